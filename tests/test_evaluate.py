"""The evaluation run (evaluation/runner.py, protocols.py, stats.py), the scripts.evaluate and
experiments.tools.heldout_curve entry points, and the sweep / curve plots. Baselines: test_baselines.py."""

import csv
import json
import os
import pathlib
import subprocess
import sys
import zlib

import jax
import ml_collections
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.base_models import baselines as bl
from meta_unsup_rules.evaluation import plots, protocols, runner, stats

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", "scripts.evaluate", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _blobs(rng, num_classes, per_class, dim, spread=0.3):
  centres = rng.normal(size=(num_classes, dim))
  y = np.repeat(np.arange(num_classes), per_class)
  return (centres[y] + spread * rng.normal(size=(len(y), dim))).astype(np.float32), y.astype(np.int32)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_cli_random_theta_end_to_end(tmp_path):
  out = tmp_path / "eval"
  proc = _run_cli(
    "--config=configs/tiny.py",
    "--theta=random",
    "--task=two_moons",
    "--inner_steps=4",
    "--eval_every=2",
    "--seeds=2",
    "--max_test=200",
    f"--out_dir={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  assert final["task"] == "two_moons" and final["inner_steps"] == 4
  assert set(final["final"]) == set(runner.METHODS)
  for method in runner.METHODS:
    for readout in protocols.READOUTS:
      cell = final["final"][method][readout]
      assert 0.0 <= cell["mean"] <= 1.0 and cell["sem"] is not None
  for name in ("results.csv", "results.json", "accuracy.png"):
    assert (out / name).stat().st_size > 0, name
  rows = list(csv.DictReader(open(out / "results.csv")))
  assert len(rows) == len(runner.METHODS) * 3 * len(protocols.READOUTS)  # steps 0, 2, 4
  assert {int(r["step"]) for r in rows} == {0, 2, 4}
  result = json.loads((out / "results.json").read_text())
  assert result["points"] == [0, 2, 4] and result["num_test"] == 200
  # Every method starts from the same network: at step 0 all MLP methods coincide.
  step0 = {(r["method"], r["readout"]): r["values"] for r in rows if r["step"] == "0"}
  for m in ("learned", "vae", "contrastive", "hebbian"):
    assert step0[(m, "ridge")] == step0[("random_init", "ridge")]
  assert open(out / "accuracy.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
  "args,needle",
  [
    (("--task=no_such_task",), "evaluation.task = 'no_such_task'"),
    (("--methods=learned,telepathy",), "evaluation.methods = ('learned', 'telepathy')"),
    (("--theta=/nonexistent/theta_dir",), "theta.npz not found"),
  ],
)
def test_cli_bad_input_exits_2(args, needle):
  proc = _run_cli(*args, timeout=120)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert needle in proc.stderr


def test_cli_data_dir_flag_is_used_and_a_missing_file_exits_2(tmp_path):
  empty = tmp_path / "data"
  empty.mkdir()
  proc = _run_cli("--task=tiny_mnist", "--inner_steps=1", "--seeds=1", f"--data_dir={empty}", timeout=120)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert str(empty) in proc.stderr and "mnist" in proc.stderr


def test_random_theta_zero_steps_learned_equals_random_init(tiny_cfg):
  from meta_unsup_rules import learned_update
  from meta_unsup_rules.tasks import eval_tasks

  task = eval_tasks.make_eval_task("two_moons")
  cfg = ml_collections.ConfigDict(tiny_cfg.to_dict())  # the fixture is shared by the session
  cfg.evaluation.max_test = 300
  theta_fn = lambda seed: learned_update.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  result = runner.run_evaluation(
    runner.EvaluationRun(task, cfg, ["learned", "random_init"], 0, 1, [0, 1], theta_fn)
  )
  assert result["points"] == [0]
  rows = {(r["method"], r["readout"]): r for r in result["rows"]}
  for readout in protocols.READOUTS:
    a, b = rows[("learned", readout)], rows[("random_init", readout)]
    assert a["values"] == b["values"] and a["mean"] == b["mean"] and a["sem"] == b["sem"]
  # Different seeds give different networks (the equality above is not vacuous).
  seed_state = [base_models.init(runner.seed_keys(s)["base"], 2, (24, 24, 8), cfg.base_model) for s in (0, 1)]
  assert not np.allclose(seed_state[0]["layers"][0]["w"], seed_state[1]["layers"][0]["w"])


def test_seed_keys_come_from_names_not_positions():
  root = jax.random.PRNGKey(3)
  keys = runner.seed_keys(3)
  # θ and the shared base model: the keys every earlier result was computed with.
  np.testing.assert_array_equal(keys["theta"], root)
  np.testing.assert_array_equal(keys["base"], jax.random.fold_in(root, 1))
  np.testing.assert_array_equal(keys["vae"], jax.random.fold_in(root, zlib.crc32(b"vae")))
  np.testing.assert_array_equal(keys["protonet_permuted"], keys["protonet"])
  distinct = {tuple(np.asarray(keys[m]).tolist()) for m in bl.BASELINES if m != "protonet_permuted"}
  assert len(distinct) == len(bl.BASELINES) - 1


# ----------------------------------------------------------------------------- readouts, statistics


def test_readouts_separable_features_near_perfect():
  rng = np.random.default_rng(0)
  f, y = _blobs(rng, 5, 110, 16, spread=0.1)
  idx = rng.permutation(len(y))
  s, t = idx[:50], idx[50:]
  acc = protocols.readout_accuracies(f[s], y[s], f[t], y[t], 5)
  assert acc["ridge"] >= 0.98 and acc["logistic"] >= 0.98, acc


def test_readouts_noise_features_near_chance():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(2050, 16))
  y = rng.integers(0, 5, size=2050)
  acc = protocols.readout_accuracies(f[:50], y[:50], f[50:], y[50:], 5)
  for v in acc.values():
    assert abs(v - 0.2) < 0.06, acc


def test_batched_features_chunks_are_large_enough():
  sizes = []
  fn = lambda x: (sizes.append(len(x)), x[:, :2])[1]
  x = np.arange(2 * 1100, dtype=np.float32).reshape(1100, 2)
  out = protocols.batched_features(fn, x, 500)
  np.testing.assert_array_equal(out, x)
  assert sizes == [550, 550]


def test_mean_sem_and_ci95_match_direct_computation():
  v = np.array([0.5, 0.7, 0.6, 0.9, 0.65])
  mean, sem = stats.mean_sem(v)
  direct_sem = np.sqrt(np.sum((v - v.mean()) ** 2) / (len(v) - 1)) / np.sqrt(len(v))
  assert mean == pytest.approx(v.mean()) and sem == pytest.approx(direct_sem)
  _, ci = stats.confidence_interval95(v)
  assert ci == pytest.approx(2.776445 * direct_sem, rel=1e-6)  # t(0.975, 4 degrees of freedom)
  assert stats.mean_sem([0.3]) == (0.3, None) and stats.confidence_interval95([0.3]) == (0.3, None)


def test_intervals_use_the_t_quantile_of_the_seed_count():
  assert stats.t95(3) == pytest.approx(4.302653, rel=1e-6)
  assert stats.t95(10) == pytest.approx(2.262157, rel=1e-6)
  assert stats.t95(10_000) == pytest.approx(1.959964, rel=1e-3)  # the normal limit
  with pytest.raises(ValueError):
    stats.t95(1)
  values = [0.6, 0.7, 0.8]
  results = [stats.SeedResult(s, {"m": {"ridge": [v]}}, {}, {}) for s, v in enumerate(values)]
  row = stats.aggregate(results, ["m"], [5])[0]
  assert row["ci95"] == pytest.approx(4.302653 * row["sem"], rel=1e-6)
  assert row["sem"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(3))


def test_episodic_aggregate_pools_episodes_for_the_interval():
  rng = np.random.default_rng(2)
  episodes = [rng.uniform(0.3, 0.9, size=40).tolist() for _ in range(3)]
  results = [
    stats.SeedResult(s, {"m": {"ridge": [e], "logistic": [e]}}, {}, {}) for s, e in enumerate(episodes)
  ]
  row = stats.aggregate(results, ["m"], [7], protocol="episodic")[0]
  pooled = np.concatenate(episodes)
  assert row["step"] == 7 and row["mean"] == pytest.approx(pooled.mean())
  t = stats.t95(pooled.size)  # 1.98 at 120 episodes
  assert row["ci95"] == pytest.approx(t * pooled.std(ddof=1) / np.sqrt(pooled.size), rel=1e-6)
  per_seed = [np.mean(e) for e in episodes]
  assert row["sem"] == pytest.approx(np.std(per_seed, ddof=1) / np.sqrt(3))


def test_episodes_are_n_way_k_shot_with_reindexed_labels():
  from meta_unsup_rules.tasks import eval_tasks

  task = eval_tasks.make_eval_task("two_moons")

  class FourClass:  # two_moons relabelled into 4 classes by quadrant sign of x
    name, num_classes = "quad", 4
    x_train, x_test = task.x_train, task.x_test
    y_train = (task.y_train * 2 + (task.x_train[:, 0] > 0.5)).astype(np.int32)
    y_test = (task.y_test * 2 + (task.x_test[:, 0] > 0.5)).astype(np.int32)

  xs, ys, xq, yq = protocols.sample_episode(FourClass, np.random.default_rng(0), 3, 5, 7)
  assert xs.shape == (15, 2) and xq.shape == (21, 2)
  assert sorted(np.bincount(ys).tolist()) == [5, 5, 5] and sorted(np.bincount(yq).tolist()) == [7] * 3
  acc = protocols.episodic_accuracies(lambda x: x, FourClass, np.random.default_rng(0), 3, 5, 7, 4)
  assert all(len(v) == 4 for v in acc.values())


@pytest.mark.slow
def test_cli_exported_theta_uses_its_config_with_overrides(tmp_path, tiny_cfg, tiny_theta):
  from meta_unsup_rules import learned_update

  learned_update.save_theta(tmp_path / "theta", tiny_theta, tiny_cfg, {"updates": 0})
  out = tmp_path / "eval"
  # The base config is local.py (another rule size): θ's own config.json must win for the
  # rule, while the explicit base-model override must still apply.
  proc = _run_cli(
    f"--theta={tmp_path / 'theta'}",
    "--task=two_moons",
    "--inner_steps=2",
    "--eval_every=2",
    "--seeds=1",
    "--max_test=200",
    "--methods=learned,random_init",
    "--config.base_model.hidden_widths=(16,)",
    f"--out_dir={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(final["final"]) == {"learned", "random_init"}
  cfg = json.loads((out / "results.json").read_text())["config"]
  assert cfg["rule"] == json.loads(tiny_cfg.rule.to_json())
  assert tuple(cfg["base_model"]["hidden_widths"]) == (16,)
  assert cfg["base_model"]["top_width"] == tiny_cfg.base_model.top_width


def _run_curve_cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", "experiments.tools.heldout_curve", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.mark.slow
def test_heldout_curve_evaluates_snapshots_in_update_order(tmp_path, tiny_cfg, tiny_theta):
  from meta_unsup_rules import learned_update

  snaps = tmp_path / "snapshots"
  other = jax.tree_util.tree_map(lambda x: 1.5 * x, tiny_theta)
  learned_update.save_theta(snaps / "step_00000004", other, tiny_cfg, {"updates": 4})
  learned_update.save_theta(snaps / "step_00000002", tiny_theta, tiny_cfg, {"updates": 2})
  (snaps / "not_an_export").mkdir()
  out = tmp_path / "curve"
  proc = _run_curve_cli(
    f"--snapshots={snaps}",
    "--task=two_moons",
    "--inner_steps=2",
    "--eval_every=2",
    "--seeds=2",
    "--max_test=200",
    f"--out_dir={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  last = json.loads(proc.stdout.strip().splitlines()[-1])
  assert [p["updates"] for p in last["curve"]] == [0, 2, 4]
  curve = json.loads((out / "curve.json").read_text())
  assert [p["name"] for p in curve["points"]] == ["untrained", "step_00000002", "step_00000004"]
  assert (out / "curve.png").stat().st_size > 0
  untrained, snap2, _ = curve["points"]
  # The untrained θ is init_theta(PRNGKey(seed 0)), the very θ saved as step 2: same numbers.
  assert untrained["final"]["learned"] == snap2["final"]["learned"]
  # Random init does not depend on θ.
  assert len({json.dumps(p["final"]["random_init"], sort_keys=True) for p in curve["points"]}) == 1


@pytest.mark.slow
def test_heldout_curve_without_exports_exits_2(tmp_path):
  (tmp_path / "empty").mkdir()
  proc = _run_curve_cli(f"--snapshots={tmp_path / 'empty'}", "--task=two_moons")
  assert proc.returncode == 2 and "no θ export inside" in proc.stderr
  proc = _run_curve_cli(f"--snapshots={tmp_path / 'missing'}", "--task=two_moons")
  assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_sweep_and_curve_plots_write_pngs(tmp_path):
  final = lambda a: {"learned": {"ridge": {"mean": a, "sem": 0.01}, "logistic": {"mean": a, "sem": None}}}
  plots.plot_sweep(
    {
      "values": ["relu", "tanh"],
      "final": {"relu": final(0.4), "tanh": final(0.5)},
      "methods": ["learned"],
      "sweep": "activation",
      "inner_steps": 10,
      "task": "t",
    },
    tmp_path / "sweep.png",
  )
  plots.plot_curve(
    {
      "points": [{"updates": 0, "final": final(0.3)}, {"updates": 50, "final": final(0.4)}],
      "methods": ["learned"],
      "inner_steps": 10,
      "task": "t",
      "seeds": [0],
    },
    tmp_path / "curve.png",
  )
  assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "curve.png").stat().st_size > 0
