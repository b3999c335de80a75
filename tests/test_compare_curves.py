"""experiments.tools.compare_curves: the table from several scripts.evaluate results; bad entries exit 2."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _result(path, means):
  rows = [
    {"method": "learned", "readout": "ridge", "step": s, "mean": m, "sem": 0.01}
    for s, m in zip((0, 10, 20), means)
  ]
  path.mkdir()
  (path / "results.json").write_text(json.dumps({"rows": rows}))


def _run(args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  cmd = [sys.executable, "-m", "experiments.tools.compare_curves", *args]
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)


def test_table_and_plot(tmp_path):
  _result(tmp_path / "a", (0.1, 0.5, 0.6))
  _result(tmp_path / "b", (0.1, 0.7, 0.4))
  out = _run([f"--results=A={tmp_path / 'a'},B={tmp_path / 'b'}", f"--out={tmp_path / 'c.png'}"])
  assert out.returncode == 0, out.stderr[-2000:]
  last = json.loads(out.stdout.strip().splitlines()[-1])
  assert last["steps"] == [0, 10, 20] and last["curves"]["B"][1] == [0.7, 0.01]
  assert "| B | 0.100 ± 0.010 | 0.700 ± 0.010 | 0.400 ± 0.010 |" in out.stdout
  assert (tmp_path / "c.png").stat().st_size > 0


def test_bad_entries_exit_2(tmp_path):
  _result(tmp_path / "a", (0.1, 0.5, 0.6))
  assert _run([f"--results={tmp_path / 'a'}"]).returncode == 2  # no LABEL=
  missing = _run([f"--results=A={tmp_path / 'nope'}"])
  assert missing.returncode == 2 and "cannot read" in missing.stderr
  other = _run([f"--results=A={tmp_path / 'a'}", "--method=pca"])
  assert other.returncode == 2 and "no rows" in other.stderr


def test_validation_table(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  records = [
    {"step": 1, "meta_loss": 0.7},
    {"step": 2, "meta_loss": 0.6, "val_step": 2, "val_accuracy": 0.5, "val_sem": 0.02},
  ]
  (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  cmd = [sys.executable, "-m", "experiments.tools.validation_table", f"--runs=A={run}", "--start=0.4:0.01"]
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "| A | 0.400 ± 0.010 | 0.500 ± 0.020 |" in out.stdout
  points = json.loads(out.stdout.strip().splitlines()[-1])["runs"]["A"]
  assert [p["update"] for p in points] == [0, 2] and points[1]["meta_grads"] is None
  bad = subprocess.run(cmd[:-1] + ["--start=x"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert bad.returncode == 2 and "MEAN:SEM" in bad.stderr
