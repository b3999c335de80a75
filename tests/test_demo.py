"""The README's main command (scripts.demo) on the released θs of both tracks, shortened."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

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


def test_demo_shows_both_tracks_the_untrained_theta_and_random_init():
  from meta_unsup_rules.scripts import demo

  proc = _run("--inner_steps=4", "--seeds=2")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  rows = out["accuracy"]
  assert len(rows) == 4
  lines = proc.stdout.splitlines()
  position = {label: next(i for i, line in enumerate(lines) if line.startswith(label)) for label in rows}
  printed = sorted(rows, key=position.get)  # the table's order (the JSON line sorts its keys)
  assert printed[0].endswith("[paper]") and printed[1].endswith("[extension]")  # the paper track first
  assert printed[2].startswith("untrained θ") and printed[3] == "random init (no updates)"
  for row in out["accuracy"].values():
    for readout in ("ridge", "logistic"):
      assert 0.0 <= row[readout]["mean"] <= 1.0 and row[readout]["sem"] is not None
  summaries = [json.loads((pathlib.Path(p) / "summary.json").read_text()) for p in demo.RELEASES]
  by_name = {label.split(" [")[0]: summary for label, summary in out["training"].items()}
  assert [by_name[pathlib.Path(p).name] for p in demo.RELEASES] == summaries
  assert all(s["release"] for s in summaries)
  assert "[paper]" in proc.stdout and "[extension]" in proc.stdout and "random init" in proc.stdout


def test_demo_with_a_missing_theta_exits_2(tmp_path):
  proc = _run(f"--theta={tmp_path / 'nothing'}", "--inner_steps=1", "--seeds=1")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "nothing" in proc.stderr
