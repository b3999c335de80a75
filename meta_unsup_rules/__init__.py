"""meta_unsup_rules: the one installed package. Its subpackages are the checkout's top-level folders
(learned_update, evaluation, ...), mapped under this name by pyproject.toml's package-dir.

Installed (`pip install .`) the subpackages lie in this package's folder. From a checkout (the
repository root on sys.path, or the strict editable install scripts/setup.sh makes, whose link tree
type checkers follow) a finder maps exactly the subpackages of `SUBPACKAGES` to the checkout's
folders, so `meta_unsup_rules.util` is `util/` and nothing else under the root (experiments/,
tests/) passes for a subpackage. The folders are imported only under this name: `import util` from
a checkout fails, naming the right import (one module object per file: a second copy would carry a
second ExportError class, a second jit cache)."""

import importlib.util as _importlib_util
import pathlib as _pathlib
import sys as _sys

# The installed code subpackages (pyproject.toml [tool.setuptools] packages, one level down; the
# released θs, checkpoints/, are data found by path).
SUBPACKAGES = (
  "base_models",
  "benchmarks",
  "configs",
  "distributed",
  "evaluation",
  "learned_update",
  "meta_objective",
  "scripts",
  "tasks",
  "util",
)
_ROOT = _pathlib.Path(__file__).resolve().parent.parent


class _CheckoutFinder:
  """meta_unsup_rules.<subpackage> → <root>/<subpackage>/ (deeper modules follow its __path__)."""

  @classmethod
  def find_spec(cls, fullname, path=None, target=None):
    del path, target
    head, _, rest = fullname.partition(".")
    if head != __name__ or rest not in SUBPACKAGES:
      return None
    folder = _ROOT / rest
    init = folder / "__init__.py"
    if not init.is_file():
      return None
    return _importlib_util.spec_from_file_location(fullname, init, submodule_search_locations=[str(folder)])


# In a checkout, also under the strict editable install (whose link tree this file resolves through):
# the subpackages come from the checkout's folders, so a module added since the install is found.
_in_checkout = (_ROOT / "pyproject.toml").is_file() and (_ROOT / "learned_update" / "__init__.py").is_file()
if _in_checkout and _CheckoutFinder not in _sys.meta_path:
  _sys.meta_path.insert(0, _CheckoutFinder)
