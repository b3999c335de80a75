"""`unroll.stagger_first_task`: workers start their first task at spread inner-step phases."""

import jax
import numpy as np

from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import unroll


def _cfg(tiny_cfg, stagger):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.task.update(dict(width_min=16, width_max=16, width_grid=0))  # one base-model shape: one compile
  cfg.unroll.update(dict(lengths=(2,), horizon_min=16, horizon_max=32, stagger_first_task=stagger))
  return cfg


def _first_phases(cfg, theta, workers=6):
  phases = []
  for worker_id in range(workers):
    w = worker_lib.TaskWorker(cfg, seed=7, worker_id=worker_id)
    out = w.compute_gradient(theta, theta_version=0)
    phases.append((out.task_step - out.inner_steps, w.horizon))
  return phases


def test_first_tasks_start_at_spread_phases_inside_their_horizons(tiny_cfg, tiny_theta):
  phases = _first_phases(_cfg(tiny_cfg, True), tiny_theta)
  starts = [start for start, _ in phases]
  assert all(start % 2 == 0 and 0 <= start < horizon for start, horizon in phases)
  assert len(set(starts)) >= 3, starts
  assert _first_phases(_cfg(tiny_cfg, False), tiny_theta) == [(0, h) for _, h in phases]


def test_the_advanced_state_is_the_rule_applied_forward(tiny_cfg, tiny_theta):
  cfg = _cfg(tiny_cfg, True)
  worker = worker_lib.TaskWorker(cfg, seed=7, worker_id=1)
  reference = worker_lib.TaskWorker(cfg, seed=7, worker_id=1)
  worker.compute_gradient(tiny_theta, theta_version=0)
  reference.new_task()
  chunks = int(reference.rng.integers(0, reference.horizon // 2))
  state = reference.estimator.state
  fns = unroll.make_unroll_fns(cfg)
  for _ in range(chunks):
    state = fns.apply_rule(tiny_theta, state, reference.task.unlabelled_batches(reference.rng, 2, 16))
  assert chunks > 0
  # The worker then ran one truncation of k = 2 from that state.
  assert worker.steps_done == 2 * chunks + 2
  batches = reference.truncation_batches(2)
  _, _, expected, _ = fns.meta_gradient(tiny_theta, state, batches, num_classes=reference.task.num_classes)
  got_leaves = jax.tree_util.tree_leaves(worker.estimator.state)
  for got, want in zip(got_leaves, jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(got, np.asarray(want))
