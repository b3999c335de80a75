"""Imports point down the layers (README Layout): a module never imports a package above its own."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "meta_unsup_rules"  # the one installed name; its subpackages are the folders below
# Lower rank = lower layer; a package may import its own layer's package and any lower one.
RANK = {
  "util": 0,
  "tasks": 1,
  "base_models": 2,
  "meta_objective": 2,
  "learned_update": 3,
  "evaluation": 4,
  "distributed": 5,
  "benchmarks": 6,
  "scripts": 7,
  "experiments": 8,  # experiments/tools: the studies' diagnostics, on top (nothing imports them)
}


def _imported_packages(path: pathlib.Path) -> set[str]:
  return _imported_in(path.read_text(), str(path))


def _imported_in(source: str, filename: str) -> set[str]:
  """The project packages (and other top-level modules) a source imports: `from meta_unsup_rules.util
  import x`, `from meta_unsup_rules import util` and `import meta_unsup_rules.util.x` all name util."""
  names = set()
  for node in ast.walk(ast.parse(source, filename=filename)):
    if isinstance(node, ast.Import):
      names.update(_package(alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      if node.module == PACKAGE:
        names.update(alias.name for alias in node.names)
      else:
        names.add(_package(node.module))
  return names


def _package(module: str) -> str:
  parts = module.split(".")
  return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else parts[0]


def test_imports_point_down():
  upward = []
  for package, rank in RANK.items():
    for path in sorted((ROOT / package).rglob("*.py")):
      for imported in _imported_packages(path) & set(RANK):
        same_layer_sibling = RANK[imported] == rank and imported != package
        if RANK[imported] > rank or same_layer_sibling:
          upward.append(f"{path.relative_to(ROOT)} imports {imported}")
  assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_experiments_is_not_installed():
  """experiments/ (the studies and their tools) runs from the checkout only."""
  import tomllib

  setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
  folders = [*setuptools["packages"], *setuptools["package-dir"].values()]
  assert not [p for p in folders if "experiments" in p.split(".") + p.split("/")], folders


def test_one_installed_top_level_name():
  import tomllib

  setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
  assert {p.split(".")[0] for p in setuptools["packages"]} == {PACKAGE}
  assert {p.split(".")[0] for p in setuptools["package-dir"]} == {PACKAGE}


def test_configs_import_only_ml_collections_and_each_other():
  for path in sorted((ROOT / "configs").glob("*.py")):
    assert _imported_packages(path) <= {"ml_collections", "configs", "__future__"}, path


def test_the_import_form_is_parsed():
  source = "from meta_unsup_rules.util import x\nfrom meta_unsup_rules import tasks\n"
  source += "import meta_unsup_rules.evaluation.a\n"
  assert _imported_in(source, "<test>") == {"util", "tasks", "evaluation"}


def test_no_import_of_a_bare_folder_name():
  """Inside the project every import goes through meta_unsup_rules (a bare `util` could be a user's)."""
  project = {*RANK, "configs"} - {"experiments"}
  bare = []
  for folder in [*RANK, "configs", "tests"]:
    for path in sorted((ROOT / folder).rglob("*.py")):
      tree = ast.parse(path.read_text(), filename=str(path))
      for node in ast.walk(tree):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
          modules = [node.module]
        bare += [f"{path.relative_to(ROOT)}: {m}" for m in modules if m.split(".")[0] in project]
  assert not bare, "\n".join(bare)
