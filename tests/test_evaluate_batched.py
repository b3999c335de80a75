"""Seeds at once (`evaluation.batch_seeds`, evaluation/runner.py): the "off" path's numbers.

Tolerance. "threads" runs every seed's own computations, concurrently: results identical,
bit for bit (rows and diagnostics compared with ==). "vmap" (evaluation/batched.py,
util/batched_calls.py) draws and builds every seed with the same code and runs the same
computations vmapped over the seeds, which XLA may sum in another order: per-seed
accuracies equal (checked exactly here, at tiny sizes; on Tiny MNIST, 10 seeds × 1,000
steps, 199 of 200 were equal and one was one test example apart: evaluation/runner.py),
states and features allclose (rtol 1e-4, atol 1e-5), training diagnostics (losses, ELBOs)
within rel 1e-4.
"""

import threading

import jax
import ml_collections
import numpy as np
import pytest

from meta_unsup_rules import learned_update
from meta_unsup_rules.configs import tiny
from meta_unsup_rules.evaluation import batched, runner
from meta_unsup_rules.evaluation import config_section as evaluation_settings
from meta_unsup_rules.evaluation import seeds as seed_setup
from meta_unsup_rules.tasks import eval_tasks
from meta_unsup_rules.util import batched_calls
from meta_unsup_rules.util.config_check import ConfigError

SEEDS = [0, 1, 2]
STEPS, EVERY = 4, 2


def _blobs(rng, counts, dim, spread, centres=None):
  centres = rng.normal(size=(len(counts), dim)) if centres is None else centres
  y = np.repeat(np.arange(len(counts)), counts)
  x = centres[y] + spread * rng.normal(size=(len(y), dim))
  return x.astype(np.float32), y.astype(np.int32), centres


@pytest.fixture(scope="module")
def task():
  """A 3-class, 64-dimensional EvalTask: 600 train (uneven classes) and 150 test examples."""
  rng = np.random.default_rng(0)
  x_tr, y_tr, centres = _blobs(rng, (200, 300, 100), 64, 1.5)
  x_te, y_te, _ = _blobs(rng, (50, 50, 50), 64, 1.5, centres)
  return eval_tasks.EvalTask("blobs", 64, 3, ("a", "b", "c"), x_tr, y_tr, x_te, y_te)


def _cfg(**evaluation):
  cfg = tiny.get_config()
  cfg.baselines.supervised.update(dict(max_steps=20, check_every=10))
  cfg.evaluation.update(dict(n_way=3, k_shot=2, n_query=4, episodes=3, probe_max_train=250))
  cfg.evaluation.update(evaluation)
  return cfg


def _random_theta(cfg):
  return lambda seed: learned_update.init_theta(jax.random.PRNGKey(seed), cfg.rule)


def _run(task, cfg, methods, theta_fn, modes=("off", "vmap", "threads")):
  out = {}
  for mode in modes:
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.evaluation.batch_seeds = mode
    out[mode] = runner.run_evaluation(runner.EvaluationRun(task, cfg, methods, STEPS, EVERY, SEEDS, theta_fn))
  return out


def _assert_same_numbers(reference, other, rel=1e-4):
  """Equal accuracies; diagnostics within `rel` (0: equal)."""
  values = lambda res: {(r["method"], r["step"], r["readout"]): r["values"] for r in res["rows"]}
  assert other["seeds"] == reference["seeds"] and other["readouts"] == reference["readouts"]
  assert values(other) == values(reference)
  assert other["per_seed_info"].keys() == reference["per_seed_info"].keys()
  for seed, info in reference["per_seed_info"].items():
    assert other["per_seed_info"][seed].keys() == info.keys()
    for key, diag in info.items():
      for name, value in diag.items():
        got = other["per_seed_info"][seed][key][name]
        if isinstance(value, float) and rel:
          assert got == pytest.approx(value, rel=rel), (seed, key, name)
        else:
          assert got == value, (seed, key, name)


@pytest.fixture(scope="module")
def fewshot_runs(task):
  """Every mode, fewshot, every method, θ shared by the seeds (as an export is); the vmap
  run records each vmapped function's in_axes."""
  cfg = _cfg()
  theta = learned_update.init_theta(jax.random.PRNGKey(7), cfg.rule)
  axes = []
  real = batched_calls._vmapped

  def spy(fn, in_axes):
    axes.append((fn, in_axes))
    return real(fn, in_axes)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(batched_calls, "_vmapped", spy)
    runs = _run(task, cfg, list(runner.METHODS), lambda seed: theta)
  return runs, axes


def test_fewshot_every_method_same_numbers(fewshot_runs):
  runs, _ = fewshot_runs
  assert runs["off"]["seeds"] == SEEDS and runs["off"]["points"] == [0, 2, 4]
  _assert_same_numbers(runs["off"], runs["threads"], rel=0)
  _assert_same_numbers(runs["off"], runs["vmap"])
  # Not vacuous: training moved the methods away from their common start.
  final = {(r["method"], r["readout"]): r["values"] for r in runs["off"]["rows"] if r["step"] == STEPS}
  assert final[("protonet", "ridge")] != final[("random_init", "ridge")]


def test_each_training_is_one_vmapped_call_with_shared_inputs_passed_once(fewshot_runs):
  _, axes = fewshot_runs
  by_name = {}
  for fn, in_axes in axes:
    by_name.setdefault(getattr(fn, "__name__", type(fn).__name__), []).append(in_axes)
  # learned: θ (one object for every seed) passed once; state and stream stacked.
  assert (None, 0, 0) in by_name["apply_rule"]
  # hebbian (state, stream), vae / contrastive (params, opt_state, state, key, stream[, noise]).
  assert (0, 0) in by_name["train"] and (0, 0, 0, 0, 0) in by_name["train"]
  assert (0, 0, 0, 0, 0, 0) in by_name["train"]
  # protonet: the train split (one device copy) passed once, episodes stacked.
  assert (0, 0, 0, None, 0) in by_name["train"]
  # features: the shared test chunks passed once, the per-seed support sets stacked.
  assert {(0, None), (0, 0)} <= set(by_name["partial"])


@pytest.mark.parametrize("protocol", ["episodic", "linear_probe", "semi_supervised"])
def test_other_protocols_same_numbers(task, protocol):
  """Random θ per seed (stacked, not shared); PCA has no calls and runs seed by seed."""
  cfg = _cfg(protocol=protocol)
  runs = _run(task, cfg, ["learned", "random_init", "pca"], _random_theta(cfg))
  _assert_same_numbers(runs["off"], runs["threads"], rel=0)
  _assert_same_numbers(runs["off"], runs["vmap"])


def test_states_and_features_allclose(task):
  """What the accuracies rest on: each seed's trained state and features, against the same
  seed advanced alone."""
  cfg = _cfg()
  methods = ["learned", "hebbian", "vae", "contrastive", "protonet"]
  test_set = task.test_set(int(cfg.evaluation.max_test))
  together = [seed_setup.setup_seed(task, cfg, s, methods, _random_theta(cfg), test_set) for s in SEEDS]
  alone = [seed_setup.setup_seed(task, cfg, s, methods, _random_theta(cfg), test_set) for s in SEEDS]
  streams = [task.unlabelled_batches(s.stream, 3, int(cfg.unroll.inner_batch_size)) for s in together]
  for m in methods:
    batched._advance_all([s.runners[m] for s in together], streams)
    for s, u in zip(alone, streams):
      s.runners[m].advance(u)
    x = task.x_test[:40]
    plans = [seed_setup.ReadoutPlan((x,), lambda f: f) for _ in SEEDS]
    features = batched._features_all([s.runners[m] for s in together], plans)
    for s_together, s_alone, f in zip(together, alone, features):
      a, b = s_together.runners[m], s_alone.runners[m]
      for la, lb in zip(jax.tree_util.tree_leaves(a.state), jax.tree_util.tree_leaves(b.state)):
        np.testing.assert_allclose(np.asarray(la), np.asarray(lb), rtol=1e-4, atol=1e-5, err_msg=m)
      np.testing.assert_allclose(f[0], b.features(x), rtol=1e-4, atol=1e-5, err_msg=m)


def test_each_mode_takes_its_path_and_one_seed_the_reference(task, monkeypatch):
  """Mode "off" and a single seed: evaluate_seed in this thread; "threads": evaluate_seed
  in worker threads; "vmap": batched.evaluate_seeds. Each logs one line per seed and point."""
  seen = []
  real_seed, real_batched = runner.evaluate_seed, batched.evaluate_seeds

  def spy_seed(*args):
    seen.append(("seed", threading.current_thread() is threading.main_thread()))
    return real_seed(*args)

  def spy_batched(*args):
    seen.append(("vmap", tuple(args[2])))
    return real_batched(*args)

  monkeypatch.setattr(runner, "evaluate_seed", spy_seed)
  monkeypatch.setattr(batched, "evaluate_seeds", spy_batched)
  expected = {
    ("off", 3): [("seed", True)] * 3,
    ("threads", 1): [("seed", True)],
    ("vmap", 1): [("seed", True)],
    ("threads", 3): [("seed", False)] * 3,
    ("vmap", 3): [("vmap", (0, 1, 2))],
  }
  for (mode, num_seeds), calls in expected.items():
    seen.clear()
    lines = []
    cfg = _cfg(batch_seeds=mode)
    runner.run_evaluation(
      runner.EvaluationRun(task, cfg, ["random_init"], 2, 1, SEEDS[:num_seeds]), log=lines.append
    )
    assert seen == calls, (mode, num_seeds)
    expected_lines = {f"seed {s} step {p}" for s in SEEDS[:num_seeds] for p in (0, 1, 2)}
    assert len(lines) == len(expected_lines), (mode, lines)
    assert {" ".join(line.split()[:4]) for line in lines} == expected_lines, (mode, lines)


def test_batch_seeds_is_validated():
  evaluation_settings.validate_config(_cfg().evaluation)  # the default
  assert _cfg().evaluation.batch_seeds == "threads"
  ecfg = ml_collections.ConfigDict(dict(_cfg().evaluation.to_dict(), batch_seeds="yes"))
  with pytest.raises(ConfigError, match="evaluation.batch_seeds"):
    evaluation_settings.validate_config(ecfg)


# ----------------------------------------------------------------------------- util.batched_calls


def test_run_all_stacks_shares_and_falls_back():
  fn = jax.jit(lambda w, x: x @ w)
  w = np.arange(6, dtype=np.float32).reshape(3, 2)
  xs = [np.full((4, 3), i, np.float32) for i in range(3)]
  calls = [batched_calls.Call(fn, (w, x)) for x in xs]
  assert batched_calls.stackable(calls)
  for out, call in zip(batched_calls.run_all(calls), calls):
    np.testing.assert_allclose(out, call.run())
  # Another shape, another function, or one call: run one by one, same outputs.
  odd = calls[:2] + [batched_calls.Call(fn, (w, np.ones((5, 3), np.float32)))]
  other_fn = calls[:2] + [batched_calls.Call(jax.jit(lambda w, x: x @ w), (w, xs[2]))]
  for group in (odd, other_fn, calls[:1]):
    assert not batched_calls.stackable(group)
    for out, call in zip(batched_calls.run_all(group), group):
      np.testing.assert_allclose(out, call.run())


def test_same_data_means_same_memory_not_equal_values():
  x = np.arange(12, dtype=np.float32).reshape(4, 3)
  assert batched_calls._same_data([x, x[:]])
  assert batched_calls._same_data([np.array_split(x, 2)[1], np.array_split(x, 2)[1]])
  assert batched_calls._same_data([{"a": x}, {"a": x[:]}])
  assert not batched_calls._same_data([x, x.copy()])
  assert not batched_calls._same_data([x, x[:2]])
