"""One copy of each module: the library folders import only as meta_unsup_rules.<folder>, and no other
folder of the checkout passes for a subpackage."""

import os
import pathlib
import subprocess
import sys

import pytest

import meta_unsup_rules

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = (
  "util",
  "tasks",
  "base_models",
  "meta_objective",
  "learned_update",
  "evaluation",
  "distributed",
  "benchmarks",
  "configs",
)


def _python(code: str):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
  )


@pytest.mark.parametrize("folder", LIBRARY)
def test_a_library_folder_by_its_bare_name_fails_naming_the_right_import(folder):
  proc = _python(f"import {folder}")
  assert proc.returncode != 0
  assert f"ImportError: import meta_unsup_rules.{folder}, not {folder}" in proc.stderr, proc.stderr[-1500:]


@pytest.mark.parametrize("phantom", ["experiments", "meta_unsup_rules", "tests", "docs", "checkpoints"])
def test_no_other_folder_passes_for_a_subpackage(phantom):
  proc = _python(f"import meta_unsup_rules.{phantom}")
  assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, proc.stderr[-1500:]


def test_every_installed_subpackage_imports_from_its_folder():
  proc = _python(
    "import importlib, meta_unsup_rules\n"
    "for name in meta_unsup_rules.SUBPACKAGES:\n"
    "  m = importlib.import_module('meta_unsup_rules.' + name)\n"
    "  print(name, m.__file__)\n"
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  for line in proc.stdout.splitlines():
    name, path = line.split(" ", 1)
    assert pathlib.Path(path).resolve().parent == (ROOT / name).resolve(), line


def test_the_subpackage_list_is_pyprojects():
  import tomllib

  setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
  top = {p.split(".")[1] for p in setuptools["packages"] if p.count(".") == 1}
  assert set(meta_unsup_rules.SUBPACKAGES) == top - {"checkpoints"}  # checkpoints/: data, found by path


def test_the_commands_checkout_forms_still_run():
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  for module in ("scripts.export_theta", "experiments.tools.arms"):
    proc = subprocess.run(
      [sys.executable, "-m", module, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (module, proc.stderr[-1500:])
