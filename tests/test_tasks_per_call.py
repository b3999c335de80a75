"""N tasks per compiled call (workers.tasks_per_call): the vmapped meta-gradients are the N single
calls', on every estimator and both rule implementations; a worker's group of tasks shares a shape,
and its checkpoint resumes bit for bit."""

import copy

import jax
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.distributed import checkpoint, gradient_estimators, inprocess_pool
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import rule, unroll
from tests.conftest import TINY_CLASSES, TINY_INPUT_DIM, tiny_batches
from tests.worker_testing import assert_trees_equal, one_shape_cfg

RTOL, ATOL = 1e-4, 1e-5
N = 3


def _close(a, b):
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL, atol=ATOL, err_msg=str(path))


def _cosine(a, b) -> float:
  x = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(a)]).astype(np.float64)
  y = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(b)]).astype(np.float64)
  return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-30))


@pytest.mark.parametrize("implementation", ["reference", "fused"])
@pytest.mark.parametrize("estimator", ["tbptt", "pes", "hybrid"])
def test_vmapped_truncations_equal_n_single_calls(tiny_cfg, estimator, implementation, monkeypatch):
  """Truncated backprop: gradients, losses and states at rtol 1e-4 / atol 1e-5. PES: every ± unroll's
  loss and state at that tolerance, and the estimate is ξ·(L+ − L−)/(2σ²) of those losses; the
  estimate itself only to a cosine of 0.999, because L+ − L− (σ = 0.01) is ~10⁻³ of L and float32
  rounding of a reordered (vmapped) reduction, ~10⁻⁷ of L, becomes ~10⁻⁴–10⁻² of the difference."""
  from meta_unsup_rules.distributed import pes as estimators

  losses = []  # (L+, L−) of every pair, in call order
  pes_gradient = estimators.pes_gradient

  def recording(xis, plus, minus, sigma):
    losses.append((list(plus), list(minus)))
    return pes_gradient(xis, plus, minus, sigma)

  monkeypatch.setattr(estimators, "pes_gradient", recording)
  cfg = one_shape_cfg(tiny_cfg, estimator, pes_pairs=2)
  cfg.rule.implementation = implementation
  fns = unroll.make_unroll_fns(cfg)
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  widths = base_models.layer_widths(cfg.base_model)
  singles, many = [], []
  for i in range(N):  # each task its own base model, batches and random stream
    state = jax.tree_util.tree_map(
      np.asarray, base_models.init(jax.random.PRNGKey(10 + i), TINY_INPUT_DIM, widths, cfg.base_model)
    )
    est = gradient_estimators.make_estimator(cfg)
    est.start(state)
    singles.append(est)
    many.append(copy.deepcopy(est))
  batches = [tiny_batches(cfg, np.random.default_rng(100 + i)) for i in range(N)]
  for call in range(2):  # the second call carries the states (and PES's ξ) of the first
    rngs_a = [np.random.default_rng([call, i]) for i in range(N)]
    rngs_b = [np.random.default_rng([call, i]) for i in range(N)]
    losses.clear()
    want = [e.truncation(fns, theta, b, TINY_CLASSES, r) for e, b, r in zip(singles, batches, rngs_a)]
    got = type(many[0]).truncation_many(many, fns, theta, batches, TINY_CLASSES, rngs_b)
    want_losses, got_losses = losses[:N], losses[N:]
    np.testing.assert_allclose(
      np.array(got_losses, np.float64), np.array(want_losses, np.float64), rtol=RTOL, atol=ATOL
    )
    for g, w in zip(got, want):
      np.testing.assert_allclose(float(g.loss), float(w.loss), rtol=RTOL, atol=ATOL)
      if estimator == "tbptt":
        _close(g.grads, w.grads)
      else:
        assert _cosine(g.grads, w.grads) > 0.999
      assert (g.grads_tbptt is None) == (w.grads_tbptt is None) and g.finite == w.finite
      if w.grads_tbptt is not None:  # hybrid's backprop through the ± unrolls
        _close(g.grads_tbptt, w.grads_tbptt)
    for a, b in zip(many, singles):
      _close(a.get_state(), b.get_state())
  assert any(np.any(np.asarray(g) != 0) for g in jax.tree_util.tree_leaves(got[0].grads))


def _group_cfg(tiny_cfg, estimator="tbptt"):
  cfg = one_shape_cfg(tiny_cfg, estimator)
  cfg.task.update(dict(width_min=16, width_max=24, width_grid=2))  # a group draws its shape
  cfg.workers.tasks_per_call = N
  return cfg


@pytest.mark.parametrize("estimator", ["tbptt", "pes"])
def test_a_worker_group_shares_a_shape_and_resumes_bit_for_bit(tiny_cfg, tiny_theta, estimator):
  cfg = _group_cfg(tiny_cfg, estimator)
  worker = worker_lib.TaskWorker(cfg, seed=4)
  for call in range(3):
    results = worker.compute_gradients(tiny_theta, call)
    assert [r.slot for r in results] == list(range(N)) and {r.theta_version for r in results} == {call}
    tasks = [worker.task] + [e.task for e in worker.extra]
    assert len({t.layer_widths for t in tasks}) == 1 and len({t.num_classes for t in tasks}) == 1
    assert len({tuple(t.classes) + (t.dataset,) for t in tasks}) > 1  # each task its own draw
    assert all(np.all(np.isfinite(g)) for r in results for g in jax.tree_util.tree_leaves(r.grads))
  saved = checkpoint.decode(checkpoint.encode({"step": 0, "worker": worker.get_state()}))["worker"]
  assert len(saved["extra"]) == N - 1
  resumed = worker_lib.TaskWorker(cfg, seed=99)
  resumed.set_state(saved)
  for call in range(4):  # past the end of a group (horizons of 4-8 steps): the next group alike
    a = worker.compute_gradients(tiny_theta, 10 + call)
    b = resumed.compute_gradients(tiny_theta, 10 + call)
    for x, y in zip(a, b):
      assert_trees_equal(x.grads, y.grads)
      assert x.loss == y.loss and x.dataset == y.dataset and x.task_step == y.task_step
  # A checkpoint of another number of tasks per call is refused, naming both.
  other = worker_lib.TaskWorker(_group_cfg(tiny_cfg, estimator).copy_and_resolve_references(), seed=1)
  other.extra = other.extra[:1]
  with pytest.raises(checkpoint.CheckpointError, match="tasks per call"):
    other.set_state(saved)


def test_one_task_per_call_is_the_single_worker(tiny_cfg, tiny_theta):
  cfg = one_shape_cfg(tiny_cfg, "tbptt")
  a, b = worker_lib.TaskWorker(cfg, seed=2), worker_lib.TaskWorker(cfg, seed=2)
  for call in range(3):
    (x,) = a.compute_gradients(tiny_theta, call)
    y = b.compute_gradient(tiny_theta, call)
    assert_trees_equal(x.grads, y.grads)
  assert "extra" not in a.get_state()  # checkpoints keep their format


def test_the_in_process_pool_hands_the_learner_every_task_of_a_call(tiny_cfg, tiny_theta):
  cfg = _group_cfg(tiny_cfg)
  pool = inprocess_pool.InProcessPool(cfg, seed=0, num_workers=1)
  results = pool.results(tiny_theta, 0)
  assert len(results) == N and [r.slot for r in results] == list(range(N))
