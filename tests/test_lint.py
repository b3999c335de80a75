"""The code stays clean under the pinned linter and formatter (ruff, configured in pyproject.toml)."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff(*args):
  exe = shutil.which("ruff")
  cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
  return subprocess.run(cmd + list(args), cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_ruff_is_clean(args):
  out = _ruff(*args)
  assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
