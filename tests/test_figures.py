"""Figures: Fig. 6 analysis (evaluation/features.py, experiments.tools.feature_figures), the Markdown
results table (evaluation/outputs.py, experiments.tools.make_figures) and the meta-training curves
(evaluation/plots.py)."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.evaluation import features, outputs, plots
from meta_unsup_rules.tasks import eval_tasks

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _images(rng, n, side):
  """n distinct images with max |value| exactly 1 (tile_fields rescales to that)."""
  imgs = rng.normal(size=(n, side, side))
  return imgs / np.abs(imgs).max(axis=(1, 2), keepdims=True)


# ----------------------------------------------------------------------------- receptive fields


def test_receptive_fields_undo_the_input_permutation():
  rng = np.random.default_rng(0)
  side, n = 6, 5
  imgs = _images(rng, n, side)
  perm = rng.permutation(side * side)
  # Unit k's weights in the permuted order the network sees: W[j, k] = image_k[perm[j]].
  w = np.stack([im.ravel()[perm] for im in imgs], axis=1)
  fields = features.receptive_fields(w, perm)
  np.testing.assert_array_equal(fields.reshape(n, side, side), imgs)
  # The defining property: the unit's response to a raw input is <input, field>.
  x = rng.normal(size=(7, side * side))
  np.testing.assert_allclose(x[:, perm] @ w, x @ fields.T, rtol=1e-12, atol=1e-12)

  pad, ncols = 1, 3
  grid = features.tile_fields(fields, side, ncols=ncols, pad=pad)
  assert grid.shape == (pad + 2 * (side + pad), pad + ncols * (side + pad))
  for i, im in enumerate(imgs):
    r, c = pad + (i // ncols) * (side + pad), pad + (i % ncols) * (side + pad)
    np.testing.assert_allclose(grid[r : r + side, c : c + side], im)
  assert np.isnan(grid[0]).all() and np.isnan(grid[:, 0]).all()


def test_receptive_fields_of_a_real_base_model_and_bad_shapes(tiny_cfg):
  state = base_models.init(
    jax.random.PRNGKey(3), 16, base_models.layer_widths(tiny_cfg.base_model), tiny_cfg.base_model
  )
  w, perm = np.asarray(state["layers"][0]["w"]), np.asarray(state["perm"])
  assert not np.array_equal(perm, np.arange(16))
  fields = features.receptive_fields(w, perm)
  x = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
  # Same pre-BN activations as base_models.forward's x⁰ @ W.
  x0 = np.asarray(base_models.forward(state, x, "relu")[1][0])
  np.testing.assert_allclose(x0 @ w, x @ fields.T, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="permutation"):
    features.receptive_fields(w, perm[:-1])
  assert features.image_side(196) == 14 and features.image_side(2) is None
  assert features.image_side(1000) is None


# ----------------------------------------------------------------------------- spectrum


def test_pca_spectrum_sums_to_one_sorted_and_effective_rank():
  rng = np.random.default_rng(0)
  scales = np.array([0.1, 5.0, 1.0, 0.01, 2.0])
  f = rng.normal(size=(4000, 5)) * scales + 3.0
  s = features.pca_spectrum(f)
  assert s.shape == (5,)
  assert abs(s.sum() - 1.0) < 1e-12
  assert np.all(np.diff(s) <= 0)
  expected = np.sort(scales**2 / np.sum(scales**2))[::-1]
  np.testing.assert_allclose(s, expected, rtol=0.1, atol=1e-4)
  # One direction only → effective rank 1; isotropic → D.
  assert features.effective_rank([1.0, 0.0, 0.0]) == pytest.approx(1.0)
  assert features.effective_rank(np.full(8, 1 / 8)) == pytest.approx(8.0)
  assert 1.0 < features.effective_rank(s) < 5.0
  dead = features.pca_spectrum(np.ones((10, 4)))
  assert np.all(dead == 0) and features.effective_rank(dead) == 0.0


# ----------------------------------------------------------------------------- Markdown table


def _result(task, final, readouts=("ridge", "logistic"), **kw):
  return {"task": task, "inner_steps": 100, "readouts": list(readouts), "final": final, **kw}


def test_results_markdown_one_row_per_method_and_cell_text():
  results = [
    _result(
      "tiny_mnist",
      {
        "learned": {"ridge": {"mean": 0.81234, "sem": 0.0123}, "logistic": {"mean": 0.8, "sem": None}},
        "random_init": {"ridge": {"mean": 0.5, "sem": 0.01}, "logistic": {"mean": 0.49, "sem": 0.02}},
        "pca": {"ridge": {"mean": 0.7, "sem": 0.004}, "logistic": {"mean": 0.71, "sem": 0.005}},
      },
    ),
    _result(
      "imdb",
      {
        "learned": {"ridge": {"mean": 0.55, "sem": 0.0051}, "logistic": {"mean": 0.56, "sem": 0.01}},
        "random_init": {"ridge": {"mean": 0.52, "sem": 0.01}, "logistic": {"mean": 0.5, "sem": 0.01}},
      },
    ),
  ]
  md = outputs.results_markdown(results)
  tables = {}
  for block in md.split("### ")[1:]:
    lines = [l for l in block.splitlines() if l.startswith("|")]
    tables[block.split()[0]] = lines
  assert set(tables) == {"ridge", "logistic"}
  ridge = tables["ridge"]
  assert ridge[0] == "| method | tiny_mnist | imdb |"
  body = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in ridge[2:]}
  assert list(body) == ["learned", "random_init", "pca"]  # one row per method, runner.METHODS order
  assert body["learned"] == ["0.812 ± 0.012", "0.550 ± 0.005"]
  assert body["pca"] == ["0.700 ± 0.004", "—"]  # not run on imdb
  logistic = {line.split("|")[1].strip(): line for line in tables["logistic"][2:]}
  assert "| 0.800 |" in logistic["learned"]  # one seed: no standard error
  # Two runs of one task at the same step count share a column; each learned row names its θ
  # and a method in both keeps the first run's value.
  other = {
    "learned": {"ridge": {"mean": 0.6, "sem": 0.01}},
    "random_init": {"ridge": {"mean": 0.1, "sem": 0.01}},
  }
  merged = outputs.results_markdown(
    [_result("imdb", results[1]["final"], theta="random"), _result("imdb", other, theta="runs/b/theta")]
  )
  assert "| method | imdb |" in merged
  assert "| learned (untrained θ) | 0.550 ± 0.005 |" in merged
  assert "| learned (runs/b/theta) | 0.600 ± 0.010 |" in merged
  assert "| random_init | 0.520 ± 0.010 |" in merged
  # The same task at two step counts: two columns that say which is which.
  twice = outputs.results_markdown([results[1], {**results[1], "inner_steps": 500}])
  assert "| method | imdb (100 steps) | imdb (500 steps) |" in twice


def test_make_figures_writes_results_md(tmp_path):
  res = _result(
    "two_moons",
    {"learned": {"ridge": {"mean": 0.9, "sem": 0.01}}},
    readouts=("ridge",),
    methods=["learned"],
    protocol="fewshot",
    seeds=[0, 1],
    rows=[{"method": "learned", "step": s, "readout": "ridge", "mean": 0.9, "sem": 0.01} for s in (0, 100)],
  )
  path = tmp_path / "results.json"
  path.write_text(json.dumps(res))
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.tools.make_figures",
      f"--results={path}",
      f"--out_dir={tmp_path / 'fig'}",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    env=dict(os.environ, PYTHONPATH=str(ROOT)),
    timeout=120,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  written = json.loads(proc.stdout.strip().splitlines()[-1])["figures"]
  md = tmp_path / "fig" / "results.md"
  assert str(md) in written
  assert "| learned | 0.900 ± 0.010 |" in md.read_text()


# ----------------------------------------------------------------------------- Fig. 6 end to end


def test_feature_figures_on_a_small_image_task(tmp_path, tiny_cfg, tiny_theta):
  # Zero rule steps: the rule's compilation is paid once, by the CLI test below.
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(300, 64)).astype(np.float32)  # 8×8 "images"
  y = rng.integers(0, 3, size=300).astype(np.int32)
  task = eval_tasks.EvalTask("blobs8x8", 64, 3, ("a", "b", "c"), x[:200], y[:200], x[200:], y[200:])
  out = features.feature_figures(
    task, tiny_cfg, lambda s: tiny_theta, 0, 0, tmp_path, max_test=100, num_fields=10
  )
  assert set(out["files"]) == {"receptive_fields", "pca_spectrum"}
  for f in out["files"].values():
    assert open(f, "rb").read(8) == PNG
  for m in features.FIELD_METHODS:
    s = np.asarray(out["spectrum"][m])
    assert len(s) == tiny_cfg.base_model.top_width and abs(s.sum() - 1) < 1e-9
    assert 1.0 <= out["effective_rank"][m] <= len(s)
  # Both start from the evaluation's base model of that seed.
  runners = features.trained_runners(task, tiny_cfg, lambda s: tiny_theta, 0, 0)
  assert runners["learned"].state is runners["random_init"].state
  assert out["spectrum"]["learned"] == out["spectrum"]["random_init"]


def _run_cli(*args, timeout=300):
  return subprocess.run(
    [sys.executable, "-m", "experiments.tools.feature_figures", *args],
    cwd=ROOT,
    env=dict(os.environ, PYTHONPATH=str(ROOT)),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def test_cli_two_moons_writes_its_files(tmp_path):
  out = tmp_path / "fig6"
  proc = _run_cli(
    "--config=configs/tiny.py",
    "--theta=random",
    "--task=two_moons",
    "--inner_steps=3",
    "--max_test=200",
    f"--out_dir={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(summary["files"]) == {"two_moons", "pca_spectrum", "summary"}
  for key in ("two_moons", "pca_spectrum"):
    assert open(summary["files"][key], "rb").read(8) == PNG
  assert set(summary["effective_rank"]) == set(features.FIELD_METHODS)
  saved = json.loads((out / "fig6_summary.json").read_text())
  assert saved["inner_steps"] == 3 and saved["theta"] == "random"
  # Three rule steps moved the learned network away from its random initialisation.
  assert saved["spectrum"]["learned"] != saved["spectrum"]["random_init"]


@pytest.mark.parametrize(
  "args,needle",
  [
    (("--task=no_such_task",), "config field evaluation.task = 'no_such_task'"),
    (("--task=two_moons", "--theta=/nonexistent/theta_dir"), "theta.npz not found"),
  ],
)
def test_cli_bad_input_exits_2(args, needle):
  proc = _run_cli(*args, timeout=120)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert needle in proc.stderr


# ----------------------------------------------------------------------------- Fig. 3


def test_plot_training_per_dataset_running_means(tmp_path):
  rng = np.random.default_rng(0)
  records = []
  for step in range(1, 41):
    # Each update sees two of three datasets, as a small learner batch does.
    names = [n for i, n in enumerate(("alphabet", "cifar10", "imagenet")) if (step + i) % 3]
    per = {n: float(0.7 - 0.001 * step + 0.01 * rng.normal()) for n in names}
    records.append(
      {
        "step": step,
        "meta_loss": float(np.mean(list(per.values()))),
        "meta_loss_per_dataset": per,
        "accuracy": 0.1 + 0.001 * step,
        "grad_norm": 1e-3,
        "meta_grads_per_sec": 0.5,
        "elapsed_sec": 60.0 * step,
        # Runs before the θ-norm metric lack it; a resumed one has it from then on.
        **({"theta_norm": 10.0 + step} if step > 20 else {}),
      }
    )
  series = plots.per_dataset_series(records)
  assert list(series) == ["alphabet", "cifar10", "imagenet"]
  s, h, v = series["alphabet"]
  assert list(s) == [r["step"] for r in records if "alphabet" in r["meta_loss_per_dataset"]]
  np.testing.assert_allclose(h, s / 60.0)
  assert v[0] == records[0]["meta_loss_per_dataset"]["alphabet"]
  np.testing.assert_allclose(plots.rolling_mean([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
  summary = plots.plot_training(records, tmp_path / "t.png", smooth=5, title="run x")
  assert summary["datasets"] == list(series) and summary["updates"] == 40
  assert (tmp_path / "t.png").read_bytes()[:8] == PNG
  assert (tmp_path / "t.pdf").read_bytes()[:5] == b"%PDF-"


def test_with_gaps_breaks_lines_only_where_samples_are_missing():
  x, y = plots.with_gaps([1, 2, 3, 10, 11], [5, 6, 7, 8, 9], max_step=1)
  assert np.isnan(y[3]) and np.isnan(x[3]) and len(x) == 6
  np.testing.assert_array_equal(y[~np.isnan(y)], [5, 6, 7, 8, 9])
  x, y = plots.with_gaps(
    [0, 100, 200, 300], [1, 2, 3, 4], max_step=1.5 * plots.typical_spacing([0, 100, 200])
  )
  assert not np.isnan(y).any()
  x, y = plots.with_gaps([0, 100, 300], [1, 2, 3], max_step=150)
  assert np.isnan(y).sum() == 1 and np.isnan(y[2])


def test_plot_training_draws_gaps_not_segments_over_missing_updates(tmp_path, monkeypatch):
  # Updates 11-29 are missing (say, a lost stretch of metrics.jsonl): no drawn line may cross them.
  records = [
    {
      "step": s,
      "meta_loss": 0.7,
      "accuracy": 0.2,
      "grad_norm": 1.0,
      "meta_grads_per_sec": 1.0,
      "elapsed_sec": 60.0 * s,
      "meta_loss_per_dataset": {"alphabet": 0.7},
      "theta_norm": 3.0,
      **({"val_accuracy": 0.5, "val_sem": 0.01} if s % 5 == 0 else {}),
    }
    for s in [*range(1, 11), *range(30, 41)]
  ]
  import matplotlib.axes

  drawn = []
  original = matplotlib.axes.Axes.plot

  def spy(self, *args, **kwargs):
    lines = original(self, *args, **kwargs)
    drawn.extend(line for line in lines if self.get_xlabel() in ("", "update"))
    return lines

  monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
  plots.plot_training(records, tmp_path / "t.png", smooth=3)
  crossing = []
  for line in drawn:
    x = np.asarray(line.get_xdata(), np.float64)
    y = np.asarray(line.get_ydata(), np.float64)
    if len(x) < 2 or x.max() < 30 or np.nanmin(x) > 10:
      continue  # a single marker, or a series on one side only
    ok = np.isfinite(x) & np.isfinite(y)
    segments = ok[:-1] & ok[1:]
    crossing += [(x[i], x[i + 1]) for i in np.nonzero(segments)[0] if x[i] <= 10 and x[i + 1] >= 30]
  assert drawn and not crossing


def test_one_seed_result_says_it_has_no_error_band(tmp_path):
  rows = [
    {"method": "learned", "step": s, "readout": "ridge", "mean": 0.5, "sem": None, "ci95": None, "n_seeds": 1}
    for s in (0, 10)
  ]
  result = {
    "task": "t",
    "methods": ["learned"],
    "readouts": ["ridge"],
    "rows": rows,
    "seeds": [0],
    "protocol": "fewshot",
    "theta": "checkpoints/paper_track_u1200",
  }
  assert plots._error_name(result) == "1 seed (no error band)"
  assert plots._run_name(result) == "θ paper_track_u1200, "
  plots.plot_result(result, tmp_path / "r.png")
  assert (tmp_path / "r.png").read_bytes()[:8] == PNG and (tmp_path / "r.pdf").is_file()
