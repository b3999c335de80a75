"""The README's main command (scripts.demo) on the shipped θ, shortened."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "ojac_u250"

pytestmark = pytest.mark.slow


def _run(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", "scripts.demo", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def test_demo_evaluates_the_shipped_theta():
  proc = _run("--inner_steps=4", "--seeds=2")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(out["accuracy"]) == {"meta-trained θ", "untrained θ", "random init (no updates)"}
  for row in out["accuracy"].values():
    for readout in ("ridge", "logistic"):
      assert 0.0 <= row[readout]["mean"] <= 1.0 and row[readout]["sem"] is not None
  assert out["training"] == json.loads((SHIPPED / "summary.json").read_text())
  assert "4/4 seed runs done" in proc.stderr  # the progress line
  assert "meta-trained θ" in proc.stdout and "random init" in proc.stdout


def test_demo_with_a_missing_theta_exits_2(tmp_path):
  proc = _run(f"--theta={tmp_path / 'nothing'}", "--inner_steps=1", "--seeds=1")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "nothing" in proc.stderr
