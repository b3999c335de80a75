"""The structure stays readable: nobody patches a library's private attributes, one registry says
which check owns each config section, and every section has one."""

import ast
import pathlib

from meta_unsup_rules.configs import paper
from meta_unsup_rules.util import config_check

ROOT = pathlib.Path(__file__).resolve().parents[1]
CODE = [
  p
  for folder in (
    "util",
    "tasks",
    "base_models",
    "meta_objective",
    "learned_update",
    "evaluation",
    "distributed",
    "benchmarks",
    "scripts",
    "configs",
    "experiments",
    "meta_unsup_rules",
  )
  for p in sorted((ROOT / folder).rglob("*.py"))
]


def test_no_module_assigns_to_a_private_attribute_of_another_object():
  found = []
  for path in CODE:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
      targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
      for t in targets:
        if isinstance(t, ast.Attribute) and t.attr.startswith("_") and not t.attr.startswith("__"):
          owner = t.value.id if isinstance(t.value, ast.Name) else None
          if owner not in ("self", "cls"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} assigns {ast.unparse(t)}")
  assert not found, "\n".join(found)


def test_one_registry_of_config_checks_covers_every_section():
  sections = {k for k, v in paper.get_config().items() if hasattr(v, "keys")}
  assert sections <= set(config_check.SECTION_CHECKS), sections - set(config_check.SECTION_CHECKS)
  # Nobody keeps a second table of section checks.
  others = []
  for path in CODE:
    text = path.read_text()
    if path.name != "config_check.py" and ("def validators(" in text or "def _validators(" in text):
      others.append(str(path.relative_to(ROOT)))
  assert not others, others


def test_every_registered_check_exists():
  import importlib

  for section, (module, function, takes) in config_check.SECTION_CHECKS.items():
    assert callable(getattr(importlib.import_module(module), function)), section
    assert takes in ("section", "whole"), section
