"""The study tools' arithmetic: the compute curve's log-linear trend and read-offs, the arms' paired
differences (invariants on constructed data, not golden numbers)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from experiments.tools import trends
from experiments.tools.trends import fit_log_linear, reach


def test_a_log_linear_trend_is_recovered_and_read_off_where_it_meets_a_level():
  g = np.array([800, 1600, 3200, 6400, 12800, 25600], np.float64)
  noise = np.array([0.002, -0.001, 0.0, 0.001, -0.002, 0.0])
  acc = 0.2 + 0.13 * np.log10(g) + noise
  fit = fit_log_linear(g, acc)
  assert fit["b"] == pytest.approx(0.13, abs=0.01) and fit["n"] == 6
  r = reach(fit, 0.8, samples=4000, seed=0)
  assert r["meta_grads"] == pytest.approx(10 ** ((0.8 - fit["a"]) / fit["b"]))
  lo, hi = r["interval_68"]
  assert lo < r["meta_grads"] < hi and r["share_of_draws_never_reaching"] == 0.0


def test_a_falling_trend_never_reaches_a_higher_level():
  g = np.array([100, 1000, 10000, 100000], np.float64)
  fit = fit_log_linear(g, [0.7, 0.68, 0.66, 0.64])
  r = reach(fit, 0.9, samples=1000, seed=0)
  assert r["meta_grads"] is None and r["share_of_draws_never_reaching"] > 0.99


def test_a_trend_needs_three_points():
  with pytest.raises(ValueError, match="at least 3"):
    fit_log_linear([10, 100], [0.1, 0.2])


def test_the_compute_curve_command_reads_runs_and_writes_its_figure(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  records = [
    {"step": s, "meta_grads_total": 8 * s, "val_accuracy": 0.3 + 0.1 * np.log10(8 * s), "val_sem": 0.01}
    for s in (100, 200, 400, 800)
  ]
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  floors = tmp_path / "floors.json"
  floors.write_text(
    json.dumps({"final": {"raw_input": {"ridge": {"mean": 0.8}}, "hebbian": {"ridge": {"mean": 0.7}}}})
  )
  out = tmp_path / "curve.json"
  cmd = [sys.executable, "-m", "experiments.tools.compute_curve", f"--runs=run={run}", "--fit=run:100-800"]
  cmd += [f"--floors={floors}", f"--out={out}", f"--figure={tmp_path / 'curve.png'}", "--samples=500"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads(out.read_text())
  # 0.3 + 0.1·log10(G) = 0.8 at G = 10^5.
  assert result["fit"]["reach"]["raw input"]["meta_grads"] == pytest.approx(1e5, rel=1e-6)
  assert (tmp_path / "curve.png").is_file()
  bad = subprocess.run(
    cmd[:4] + ["--fit=run:100", f"--out={out}"], capture_output=True, text=True, timeout=300
  )
  assert bad.returncode == 2 and "LABEL:FIRST-LAST" in bad.stderr


def test_paired_differences_average_the_last_validations_per_seed():
  control = [{"step": s, "val_per_seed": [0.5, 0.6, 0.7]} for s in (100, 200, 300)]
  arm = [
    {"step": s, "val_per_seed": [0.5 + d, 0.6 + d, 0.7 + 2 * d]}
    for s, d in ((100, 0.0), (200, 0.01), (300, 0.03))
  ]
  d = trends.paired(arm, control, last=2)
  assert d["steps"] == [200, 300]
  per_seed = np.array([0.02, 0.02, 0.04])  # mean of (0.01, 0.03) and of (0.02, 0.06)
  assert d["per_seed"] == pytest.approx(per_seed.tolist())
  assert d["mean"] == pytest.approx(per_seed.mean())
  assert d["sem"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(3))


def test_floor_levels_read_the_named_methods_at_the_chosen_readout(tmp_path):
  final = {
    "raw_input": {"ridge": {"mean": 0.84}, "logistic": {"mean": 0.88}},
    "hebbian": {"ridge": {"mean": 0.77}, "logistic": {"mean": 0.78}},
    "learned": {"ridge": {"mean": 0.5}, "logistic": {"mean": 0.5}},
  }
  path = tmp_path / "results.json"
  path.write_text(json.dumps({"final": final}))
  assert trends.floor_levels(path) == {"raw input": 0.84, "Oja's rule": 0.77}
  assert trends.floor_levels(path, methods=("hebbian",), readout="logistic") == {"Oja's rule": 0.78}


@pytest.mark.parametrize(
  "entry, sep, expected",
  [
    ("a=runs/x", "=", ("a", "runs/x")),
    ("run:100-200", ":", ("run", "100-200")),
    ("a=", "=", None),
    ("runs/x", "=", None),
  ],
)
def test_labelled_arguments_split_once_and_refuse_a_missing_side(entry, sep, expected):
  assert trends.split_labelled(entry, sep) == expected
