"""Imports point down the layers (README Layout): a module never imports a package above its own."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
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
  tree = ast.parse(path.read_text(), filename=str(path))
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name.split(".")[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module.split(".")[0])
  return names


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

  packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
  assert not [p for p in packages if p.split(".")[0] == "experiments"], packages


def test_configs_import_only_ml_collections_and_each_other():
  for path in sorted((ROOT / "configs").glob("*.py")):
    assert _imported_packages(path) <= {"ml_collections", "configs", "__future__"}, path
