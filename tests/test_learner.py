"""The central learner: averaging, clipping, schedule, stale and non-finite gradients."""

import jax
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from meta_unsup_rules.distributed import gradient_estimators
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.distributed import pes as estimators


def cfg(**overrides):
  c = ConfigDict(
    dict(
      batch_size=3,
      num_updates=100,
      learning_rates=(3e-4, 1e-4, 2e-5),
      lr_boundaries=(0.5, 0.75),
      clip_norm=5.0,
      adam_b1=0.9,
      adam_b2=0.999,
      adam_eps=1e-8,
      max_staleness=2,
    )
  )
  c.update(overrides)
  return c


def theta0():
  return {"a": np.ones((3, 2), np.float32), "b": {"c": np.zeros((4,), np.float32)}}


def result(grads, version=0, loss=1.0, grads_tbptt=None):
  fields = dict(grads=grads, loss=loss, metrics={}, theta_version=version, dataset="omniglot", inner_steps=2)
  fields.update(task_step=2, worker_id=0, seconds=0.0, backend="cpu", grads_tbptt=grads_tbptt)
  return gradient_estimators.WorkerResult(**fields)


def rand_grads(rng, scale=1.0):
  return jax.tree_util.tree_map(lambda x: (scale * rng.normal(size=x.shape)).astype(np.float32), theta0())


def test_average_of_gradients_matches_single_process_reference():
  rng = np.random.default_rng(0)
  c = cfg()
  learner = learner_lib.Learner(c, theta0())
  ref_theta, ref_opt = theta0(), learner_lib.make_optimizer(c)
  ref_state = ref_opt.init(ref_theta)
  for _ in range(3):
    grads = [rand_grads(rng) for _ in range(c.batch_size)]
    for g in grads:
      assert learner.accept(result(g, learner.step))
    assert learner.ready
    learner.apply()
    mean = jax.tree_util.tree_map(lambda *g: np.mean(g, axis=0), *grads)
    updates, ref_state = ref_opt.update(mean, ref_state, ref_theta)
    ref_theta = optax.apply_updates(ref_theta, updates)
  assert learner.step == 3
  for a, b in zip(jax.tree_util.tree_leaves(learner.theta), jax.tree_util.tree_leaves(ref_theta)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_stale_and_nonfinite_gradients_are_dropped_and_counted():
  rng = np.random.default_rng(1)
  learner = learner_lib.Learner(cfg(batch_size=1), theta0())
  for _ in range(3):  # advance to step 3
    learner.accept(result(rand_grads(rng), learner.step))
    learner.apply()
  assert not learner.accept(result(rand_grads(rng), version=0))  # 3 updates old > 2
  assert learner.accept(result(rand_grads(rng), version=1))  # 2 old: fine
  bad = rand_grads(rng)
  bad["b"]["c"][1] = np.nan
  assert not learner.accept(result(bad, version=3))
  assert not learner.accept(result(rand_grads(rng), version=3, loss=float("inf")))
  assert learner.counters["stale"] == 1 and learner.counters["nonfinite"] == 2
  assert len(learner.buffer) == 1


def test_update_is_clipped_to_the_global_norm():
  c = cfg(batch_size=1, clip_norm=5.0)
  opt = learner_lib.make_optimizer(c)
  grads = jax.tree_util.tree_map(lambda x: np.full(x.shape, 100.0, np.float32), theta0())
  clipped, _ = optax.clip_by_global_norm(c.clip_norm).update(grads, optax.EmptyState())
  np.testing.assert_allclose(optax.global_norm(clipped), 5.0, rtol=1e-5)
  # Adam's first step is invariant to the scale, so compare clipped vs unclipped moments:
  state = opt.init(theta0())
  _, state = opt.update(grads, state, theta0())
  mu_norm = optax.global_norm(state[1].mu)
  np.testing.assert_allclose(mu_norm, (1 - c.adam_b1) * 5.0, rtol=1e-5)


def test_schedule_boundaries_scale_with_run_length():
  sched = learner_lib.learning_rate_schedule(cfg(num_updates=200_000))
  assert float(sched(0)) == pytest.approx(3e-4)
  assert float(sched(99_999)) == pytest.approx(3e-4)
  assert float(sched(100_000)) == pytest.approx(1e-4)
  assert float(sched(150_000)) == pytest.approx(2e-5)
  short = learner_lib.learning_rate_schedule(cfg(num_updates=100))
  assert float(short(49)) == pytest.approx(3e-4) and float(short(50)) == pytest.approx(1e-4)


def test_checkpoint_state_round_trip():
  rng = np.random.default_rng(2)
  learner = learner_lib.Learner(cfg(batch_size=1), theta0())
  learner.accept(result(rand_grads(rng)))
  learner.apply()
  other = learner_lib.Learner(cfg(batch_size=1), theta0())
  other.set_state(learner.get_state())
  g = rand_grads(rng)
  for l in (learner, other):
    l.accept(result(g, l.step))
    l.apply()
  for a, b in zip(
    jax.tree_util.tree_leaves(learner.get_state()), jax.tree_util.tree_leaves(other.get_state())
  ):
    np.testing.assert_array_equal(a, b)


def test_the_combination_is_chosen_at_construction_not_from_the_results():
  rng = np.random.default_rng(3)
  pes = [rand_grads(rng, 3.0) for _ in range(3)]
  tbptt = [rand_grads(rng) for _ in range(3)]
  mixed = learner_lib.Learner(cfg(), theta0(), combine=gradient_estimators.INVERSE_VARIANCE)
  plain = learner_lib.Learner(cfg(), theta0())  # "mean": a hybrid result's grads_tbptt is not used
  only_pes = learner_lib.Learner(cfg(), theta0())
  for p, t in zip(pes, tbptt):
    assert mixed.accept(result(p, grads_tbptt=t)) and plain.accept(result(p, grads_tbptt=t))
    assert only_pes.accept(result(p))
  stats = mixed.apply()
  _, weight = estimators.inverse_variance_combine(pes, tbptt)
  assert stats["hybrid_weight_pes"] == weight
  assert "hybrid_weight_pes" not in plain.apply()
  only_pes.apply()
  for a, b in zip(jax.tree_util.tree_leaves(plain.theta), jax.tree_util.tree_leaves(only_pes.theta)):
    np.testing.assert_array_equal(a, b)
  # A result of another estimator is a configuration error, not a gradient to drop.
  with pytest.raises(ValueError, match="grads_tbptt"):
    mixed.accept(result(pes[0]))
  bad = rand_grads(rng)
  bad["a"][0, 0] = np.inf
  assert not mixed.accept(result(pes[0], version=mixed.step, grads_tbptt=bad))
  assert mixed.counters["nonfinite"] == 1
  with pytest.raises(ValueError, match="combine"):
    learner_lib.Learner(cfg(), theta0(), combine="median")


# ------------------------------------------------------------------ schedule, mixing rate, branching


def test_boundaries_in_updates_do_not_move_when_the_run_is_extended():
  short = cfg(num_updates=2_000, lr_boundaries=(1_000, 1_500), lr_boundaries_unit="updates")
  long = cfg(num_updates=10_000, lr_boundaries=(1_000, 1_500), lr_boundaries_unit="updates")
  for step in (0, 999, 1_000, 1_499, 1_500, 1_999):
    assert float(learner_lib.learning_rate_schedule(short)(step)) == float(
      learner_lib.learning_rate_schedule(long)(step)
    )
  assert learner_lib.schedule_boundaries(long) == (1_000, 1_500)
  sched = learner_lib.learning_rate_schedule(long)
  assert [float(sched(s)) for s in (999, 1_000, 1_500)] == pytest.approx([3e-4, 1e-4, 2e-5])


def test_fraction_boundaries_are_what_a_config_without_the_unit_means():
  """Stored runs counted boundaries as fractions: extending one moves them (why "updates" exists)."""
  old = cfg(num_updates=2_000)  # no lr_boundaries_unit
  assert learner_lib.schedule_boundaries(old) == (1_000, 1_500)
  assert learner_lib.schedule_boundaries(cfg(num_updates=4_000)) == (2_000, 3_000)


def _mixing_theta():
  return {
    "forward": {
      "merge": {"w": np.full((3,), 0.1, np.float32), "b": np.zeros((), np.float32)},
      "readouts": {"r": np.ones((2, 2), np.float32)},
    }
  }


def test_mixing_weights_take_their_multiple_of_the_rate():
  """Adam's first step moves every leaf by ~lr·sign(g): the mixing leaves by multiplier·lr."""
  theta = _mixing_theta()
  grads = jax.tree_util.tree_map(lambda x: np.full_like(x, 0.01), theta)
  c = cfg(batch_size=1, learning_rates=(1e-3,), lr_boundaries=(), mixing_lr_multiplier=4.0)
  learner = learner_lib.Learner(c, theta)
  assert learner.accept(result(grads))
  stats = learner.apply()
  moved = jax.tree_util.tree_map(lambda a, b: np.abs(np.asarray(a) - b), learner.theta, theta)
  np.testing.assert_allclose(moved["forward"]["merge"]["w"], 4e-3, rtol=1e-3)
  np.testing.assert_allclose(moved["forward"]["merge"]["b"], 4e-3, rtol=1e-3)
  np.testing.assert_allclose(moved["forward"]["readouts"]["r"], 1e-3, rtol=1e-3)
  assert stats["lr_mixing"] == pytest.approx(4e-3)
  # A multiplier of 1 is the single Adam: the same optimiser state structure as runs before it.
  single = learner_lib.Learner(cfg(mixing_lr_multiplier=1.0), theta)
  plain = learner_lib.Learner(cfg(), theta)
  assert jax.tree_util.tree_structure(single.opt_state) == jax.tree_util.tree_structure(plain.opt_state)


def test_branching_restores_adam_where_the_optimisers_match_and_starts_it_afresh_where_not():
  rng = np.random.default_rng(0)
  theta = _mixing_theta()
  parent = learner_lib.Learner(cfg(batch_size=1), theta)
  for _ in range(3):
    parent.accept(
      result(
        jax.tree_util.tree_map(lambda x: rng.normal(size=x.shape).astype(np.float32), theta), parent.step
      )
    )
    parent.apply()
  saved = parent.get_state()
  same = learner_lib.Learner(cfg(batch_size=1, learning_rates=(1e-4,), lr_boundaries=()), theta)
  assert same.branch_from(saved) == "restored" and same.step == 3
  for a, b in zip(jax.tree_util.tree_leaves(same.opt_state), jax.tree_util.tree_leaves(parent.opt_state)):
    np.testing.assert_array_equal(a, b)
  other = learner_lib.Learner(cfg(batch_size=1, mixing_lr_multiplier=3.0), theta)
  assert other.branch_from(saved) == "fresh" and other.step == 3
  for a, b in zip(jax.tree_util.tree_leaves(other.theta), jax.tree_util.tree_leaves(parent.theta)):
    np.testing.assert_array_equal(a, b)
  assert other.counters == parent.counters
