"""Meta-gradients through truncated unrolls: finite and non-zero, deterministic, robust."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_unsup_rules.learned_update import unroll
from tests.conftest import TINY_CLASSES, tiny_batches


@pytest.fixture(scope="module")
def fns(tiny_cfg):
  return unroll.make_unroll_fns(tiny_cfg)


def test_every_theta_leaf_gets_a_finite_nonzero_meta_gradient(fns, tiny_theta, tiny_state, tiny_cfg):
  batches = tiny_batches(tiny_cfg, np.random.default_rng(0))
  loss, metrics, new_state, grads = fns.meta_gradient(
    tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES
  )
  assert np.isfinite(float(loss)) and 0.0 < float(metrics["meta_loss"]) < 2.0
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    name = jax.tree_util.keystr(path)
    assert bool(jnp.all(jnp.isfinite(g))), name
    assert float(jnp.max(jnp.abs(g))) > 0.0, name
  # The unroll moved the base model and returned the moved state.
  assert float(jnp.max(jnp.abs(new_state["layers"][0]["w"] - tiny_state["layers"][0]["w"]))) > 0


def test_same_inputs_give_bit_identical_meta_gradients(fns, tiny_theta, tiny_state, tiny_cfg):
  out = [
    fns.meta_gradient(
      tiny_theta, tiny_state, tiny_batches(tiny_cfg, np.random.default_rng(7)), num_classes=TINY_CLASSES
    )
    for _ in range(2)
  ]
  for a, b in zip(jax.tree_util.tree_leaves(out[0]), jax.tree_util.tree_leaves(out[1])):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fill", [0.0, 0.5])
def test_no_nan_meta_gradient_for_zero_or_constant_inputs(fns, tiny_theta, tiny_state, tiny_cfg, fill):
  batches = tiny_batches(tiny_cfg, np.random.default_rng(0), fill=fill)
  loss, _, new_state, grads = fns.meta_gradient(tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES)
  assert np.isfinite(float(loss))
  for leaf in jax.tree_util.tree_leaves((grads, new_state)):
    assert bool(jnp.all(jnp.isfinite(leaf)))


def test_no_nan_meta_gradient_with_dead_units(fns, tiny_theta, tiny_state, tiny_cfg):
  layers = list(tiny_state["layers"])
  layers[1] = dict(layers[1], b=jnp.full_like(layers[1]["b"], -50.0))  # relu(z) = 0 everywhere
  state = dict(tiny_state, layers=tuple(layers))
  _, _, _, grads = fns.meta_gradient(
    tiny_theta, state, tiny_batches(tiny_cfg, np.random.default_rng(1)), num_classes=TINY_CLASSES
  )
  for leaf in jax.tree_util.tree_leaves(grads):
    assert bool(jnp.all(jnp.isfinite(leaf)))


def test_unroll_state_matches_applying_the_rule(fns, tiny_theta, tiny_state, tiny_cfg):
  batches = tiny_batches(tiny_cfg, np.random.default_rng(3))
  _, _, state_a, _ = fns.meta_gradient(tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES)
  state_b = fns.apply_rule(tiny_theta, tiny_state, batches["unlabelled"])
  for a, b in zip(jax.tree_util.tree_leaves(state_a), jax.tree_util.tree_leaves(state_b)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_sum_reduction_is_k_times_mean(tiny_cfg, tiny_theta, tiny_state):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.meta_objective.reduction = "sum"
  batches = tiny_batches(cfg, np.random.default_rng(4))
  total, metrics, _ = unroll.make_unroll_fns(cfg).unroll_loss(
    tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES
  )
  np.testing.assert_allclose(total, batches["x"].shape[0] * metrics["meta_loss"], rtol=1e-6)


def test_label_only_targets_reach_the_unroll(tiny_cfg, tiny_theta, tiny_state):
  cfg = tiny_cfg.copy_and_resolve_references()
  batches = tiny_batches(cfg, np.random.default_rng(5))
  assert batches["targets"].shape[-1] > TINY_CLASSES  # the tiny tasks carry regression targets
  paper, _, _ = unroll.make_unroll_fns(cfg).unroll_loss(
    tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES
  )
  cfg.meta_objective.targets = "labels"
  fns = unroll.make_unroll_fns(cfg)
  labels_only, _, _ = fns.unroll_loss(tiny_theta, tiny_state, batches, num_classes=TINY_CLASSES)
  stripped = dict(batches, targets=batches["targets"][..., :TINY_CLASSES])
  reference, _, _ = fns.unroll_loss(tiny_theta, tiny_state, stripped, num_classes=TINY_CLASSES)
  np.testing.assert_allclose(labels_only, reference, rtol=1e-6)
  assert abs(float(labels_only) - float(paper)) > 1e-4


def test_config_mismatch_is_refused(tiny_cfg):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.rule.top_width = 16
  with pytest.raises(ValueError, match="top_width"):
    unroll.make_unroll_fns(cfg)
