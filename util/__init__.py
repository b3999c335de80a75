"""Project-wide helpers with no project imports: the bottom layer every package may use."""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")
