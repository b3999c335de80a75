"""meta_unsup_rules: the one installed package. Its subpackages are the checkout's top-level folders
(learned_update, evaluation, ...), mapped under this name by pyproject.toml's package-dir; from a
checkout (editable install, or the repository root on sys.path) this __path__ extension resolves
meta_unsup_rules.<folder> to ./<folder>."""

import pathlib as _pathlib

_ROOT = _pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "learned_update" / "__init__.py").is_file():
  __path__.append(str(_ROOT))  # noqa: F821  (a package's __path__)
