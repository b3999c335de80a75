"""Base models that the learned rule trains."""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")

from meta_unsup_rules.base_models.mlp import (
  ACTIVATIONS,
  activation_fn,
  batch_norm,
  features,
  forward,
  init,
  layer_widths,
)

__all__ = ["ACTIVATIONS", "activation_fn", "batch_norm", "features", "forward", "init", "layer_widths"]
