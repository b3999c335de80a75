"""distributed/gradient_estimators.py: one estimator object per worker, chosen once; the typed result.

The worker tests spell out, step by step, the draws and unrolls a worker makes per call (the task,
k, the batches, and for PES one integer that seeds every pair's ε) and check the worker's results
bit for bit against them: a draw more, less or out of order changes every later task, batch and
perturbation of the run, and a resumed checkpoint would no longer continue it.
"""

import dataclasses
import pickle

import jax
import numpy as np
import pytest
from worker_testing import assert_trees_equal, one_shape_cfg

from meta_unsup_rules.distributed import checkpoint, gradient_estimators
from meta_unsup_rules.distributed import pes as estimators
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import unroll


def _result(**overrides):
  fields = dict(grads={"w": np.arange(3, dtype=np.float32)}, loss=0.5, metrics={"accuracy": 0.25})
  fields.update(theta_version=7, dataset="omniglot", inner_steps=2, task_step=4, worker_id=1)
  fields.update(seconds=0.1, backend="cpu")
  fields.update(overrides)
  return gradient_estimators.WorkerResult(**fields)


# ------------------------------------------------------------------------------ the factory


@pytest.mark.parametrize(
  "name, cls, combine",
  [
    ("tbptt", gradient_estimators.TruncatedBackprop, gradient_estimators.MEAN),
    ("pes", gradient_estimators.PES, gradient_estimators.MEAN),
    ("hybrid", gradient_estimators.Hybrid, gradient_estimators.INVERSE_VARIANCE),
  ],
)
def test_make_estimator_returns_the_named_class(tiny_cfg, name, cls, combine):
  cfg = one_shape_cfg(tiny_cfg, name, pes_pairs=3, pes_sigma=0.02)
  est = gradient_estimators.make_estimator(cfg)
  assert type(est) is cls and est.name == name and est.combine == combine
  assert est.reference_state() is None  # no task yet
  if isinstance(est, gradient_estimators.PES):
    assert est.num_pairs == 3 and est.sigma == 0.02


def test_every_configurable_estimator_has_a_class_and_an_unknown_one_is_refused(tiny_cfg):
  assert tuple(gradient_estimators.ESTIMATOR_CLASSES) == unroll.ESTIMATORS
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.unroll.estimator = "reinforce"
  with pytest.raises(ValueError, match="reinforce"):
    gradient_estimators.make_estimator(cfg)


# ------------------------------------------------------------------------------ the result


def test_worker_result_pickles_and_round_trips():
  result = _result(grads_tbptt={"w": np.ones(3, np.float32)})
  back = pickle.loads(pickle.dumps(result))
  assert type(back) is gradient_estimators.WorkerResult
  for field in dataclasses.fields(result):
    a, b = getattr(result, field.name), getattr(back, field.name)
    if field.name in ("grads", "grads_tbptt"):
      assert_trees_equal(a, b)
    else:
      assert a == b, field.name
  assert back.node_id is None and _result().grads_tbptt is None  # defaults: in-process, not hybrid
  with pytest.raises(dataclasses.FrozenInstanceError):
    result.loss = 1.0
  tagged = dataclasses.replace(result, node_id="abc")  # what the Ray actor sends
  assert tagged.node_id == "abc" and tagged.grads is result.grads and result.node_id is None


# ------------------------------------------------------------------------------ carried state


def test_the_carried_state_and_its_checkpoint_fields(tiny_cfg, tiny_state):
  state = jax.tree_util.tree_map(np.asarray, tiny_state)
  tbptt = gradient_estimators.make_estimator(one_shape_cfg(tiny_cfg, "tbptt"))
  tbptt.start(state)
  assert tbptt.reference_state() is state
  assert list(tbptt.get_state()) == ["state"] and tbptt.get_state(carried=False) == {"state": None}
  pes = gradient_estimators.make_estimator(one_shape_cfg(tiny_cfg, "pes", pes_pairs=2))
  pes.start(state)
  assert pes.reference_state() is state
  assert [p["plus"] is state and p["minus"] is state and p["xi"] is None for p in pes.pairs] == [True] * 2
  saved = pes.get_state()
  assert list(saved) == ["state", "pes"] and saved["state"] is None
  assert [sorted(p) for p in saved["pes"]] == [["minus", "plus", "xi"]] * 2
  assert pes.get_state(carried=False) == {"state": None, "pes": None}

  # Restored against a template; refused from the other estimator's fields, named after `who`.
  template = jax.eval_shape(lambda: tiny_state)
  other = gradient_estimators.make_estimator(one_shape_cfg(tiny_cfg, "hybrid", pes_pairs=2))
  other.set_state(saved, template, who="worker 4")
  for a, b in zip(other.pairs, pes.pairs):
    assert_trees_equal(a["plus"], b["plus"])
    assert a["xi"] is None
  with pytest.raises(checkpoint.CheckpointError, match="worker 4's checkpoint has no base-model state"):
    tbptt.set_state(saved, template, who="worker 4")
  with pytest.raises(checkpoint.CheckpointError, match="worker 4's checkpoint has no PES state"):
    pes.set_state(tbptt.get_state(), template, who="worker 4")
  three = gradient_estimators.make_estimator(one_shape_cfg(tiny_cfg, "pes", pes_pairs=3))
  with pytest.raises(checkpoint.CheckpointError, match="has 2 PES pairs, unroll.pes_pairs = 3"):
    three.set_state(saved, template, who="worker 4")
  for est in (tbptt, pes):
    est.set_state(saved, None, who="worker 4")  # no task saved: nothing carried
    assert est.reference_state() is None
  pes.start(state)
  pes.reset()
  assert pes.pairs is None


class _Diverging:
  """Unroll functions whose new state is NaN: the truncation must keep the state it had."""

  def meta_gradient(self, theta, state, batches, num_classes):
    del batches, num_classes
    bad = jax.tree_util.tree_map(lambda x: np.full(np.shape(x), np.nan, np.float32), state)
    return np.float32(1.0), {"accuracy": 0.0}, bad, theta

  def unroll_loss(self, theta, state, batches, num_classes):
    loss, metrics, bad, _ = self.meta_gradient(theta, state, batches, num_classes)
    return loss, metrics, bad


@pytest.mark.parametrize("name", ["tbptt", "pes", "hybrid"])
def test_a_diverged_truncation_keeps_the_carried_state_and_ends_the_task(tiny_cfg, tiny_theta, name):
  worker = worker_lib.TaskWorker(one_shape_cfg(tiny_cfg, name, horizon_min=8, horizon_max=8), seed=1)
  worker.new_task()
  before = worker.estimator.reference_state()
  worker.fns = _Diverging()
  out = worker.compute_gradient(tiny_theta, theta_version=0)
  assert worker.estimator.reference_state() is before
  assert worker.steps_done == worker.horizon == out.task_step  # the next call draws a new task
  assert worker.tasks_started == 1


# ------------------------------------------------------------------ the worker, bit for bit


def _expected_truncation(reference, cfg, theta, fns):
  """One call of a worker, spelled out on `reference` (a worker used only for its RNG and task)."""
  if reference.task is None or reference.steps_done >= reference.horizon:
    reference.new_task()
    reference.carried = reference.estimator.reference_state()
    reference.xi = None
  lengths = tuple(cfg.unroll.lengths)
  k = int(lengths[int(reference.rng.integers(0, len(lengths)))])
  batches = reference.truncation_batches(k)
  num_classes = reference.task.num_classes
  reference.steps_done += k
  if cfg.unroll.estimator == "tbptt":
    loss, metrics, state, grads = fns.meta_gradient(
      theta, reference.carried, batches, num_classes=num_classes
    )
    reference.carried = jax.tree_util.tree_map(np.asarray, state)
    return float(loss), {n: float(v) for n, v in metrics.items()}, grads
  # PES, one pair: exactly one integer from the worker's stream seeds the pair's ε.
  theta = jax.tree_util.tree_map(np.asarray, theta)
  (key,) = jax.random.split(jax.random.PRNGKey(int(reference.rng.integers(0, 2**31 - 1))), 1)
  eps = estimators.sample_perturbation(key, theta, cfg.unroll.pes_sigma)
  xi = estimators.accumulate(estimators.zeros_like(theta) if reference.xi is None else reference.xi, eps)
  plus, minus = estimators.antithetic(theta, eps)
  start = reference.carried
  if not isinstance(start, tuple):
    start = (start, start)
  lp, mp, sp = fns.unroll_loss(plus, start[0], batches, num_classes=num_classes)
  lm, mm, sm = fns.unroll_loss(minus, start[1], batches, num_classes=num_classes)
  reference.carried = tuple(jax.tree_util.tree_map(np.asarray, s) for s in (sp, sm))
  reference.xi = xi
  grads = estimators.pes_gradient([xi], [np.float32(lp)], [np.float32(lm)], cfg.unroll.pes_sigma)
  loss = float(np.mean([np.float32(lp), np.float32(lm)]))
  return loss, {n: float(np.mean([mp[n], mm[n]])) for n in mp}, grads


@pytest.mark.parametrize("name", ["tbptt", "pes"])
def test_worker_results_are_the_spelled_out_draws_and_unrolls(tiny_cfg, tiny_theta, name):
  cfg = one_shape_cfg(tiny_cfg, name, pes_pairs=1)
  worker = worker_lib.TaskWorker(cfg, seed=0)
  reference = worker_lib.TaskWorker(cfg, seed=0)
  fns = unroll.make_unroll_fns(cfg)
  for call in range(3):
    out = worker.compute_gradient(tiny_theta, theta_version=call)
    loss, metrics, grads = _expected_truncation(reference, cfg, tiny_theta, fns)
    assert isinstance(out, gradient_estimators.WorkerResult)
    assert out.loss == loss and out.metrics == metrics and out.grads_tbptt is None
    assert_trees_equal(out.grads, grads)
    assert (out.theta_version, out.worker_id, out.node_id) == (call, 0, None)
    assert out.task_step == reference.steps_done and out.dataset == reference.task.dataset
    # The same position of the random stream: nothing drawn more or less than spelled out.
    assert worker.rng.bit_generator.state == reference.rng.bit_generator.state
