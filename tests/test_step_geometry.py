"""The step geometry of learned_update/step_geometry.py: invariants of the tangential step and of
the radial/tangential split, and the rule's two step modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.configs import tiny
from meta_unsup_rules.learned_update import rule, step_geometry
from meta_unsup_rules.util.config_check import ConfigError


def _matrices(seed=0, n_in=20, n_out=7):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return 0.01 * jax.random.normal(k1, (n_in, n_out)), jax.random.normal(k2, (n_in, n_out))


def _angles(a, b):
  """Angle between matching columns, float64 atan2 (arccos loses small angles)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  unit = a / np.linalg.norm(a, axis=0)
  parallel = np.sum(unit * b, 0)
  perpendicular = np.linalg.norm(b - unit * parallel, axis=0)
  return np.arctan2(perpendicular, parallel)


def test_split_is_orthogonal_and_complete():
  w, change = _matrices()
  radial, tangential = step_geometry.split_change(w, change)
  np.testing.assert_allclose(radial + tangential, change, atol=1e-6)
  np.testing.assert_allclose(jnp.sum(tangential * w, 0), 0.0, atol=1e-6)
  # radial is parallel to each column: its component across the column is zero
  _, across = step_geometry.split_change(w, radial)
  np.testing.assert_allclose(across, 0.0, atol=1e-6)


@pytest.mark.parametrize("angular_step", [0.0, 0.003, 0.05])
def test_tangential_step_keeps_lengths_and_bounds_the_angle(angular_step):
  w, change = _matrices(1)
  new = step_geometry.tangential_step(w, change, angular_step)
  np.testing.assert_allclose(step_geometry.column_norms(new), step_geometry.column_norms(w), rtol=1e-5)
  _, tangential = step_geometry.split_change(w, change)
  fraction = np.linalg.norm(np.asarray(tangential), axis=0) / np.sqrt(w.shape[0])
  expected = np.arctan(angular_step * fraction)  # the column turns by atan(α‖t‖/√n)
  np.testing.assert_allclose(_angles(w, new), expected, atol=2e-4)
  # the merged change has per-column RMS < 1, so the angle is below the bound
  unit_rms = change * jax.lax.rsqrt(1.0 + jnp.mean(jnp.square(change), axis=0, keepdims=True))
  assert (_angles(w, step_geometry.tangential_step(w, unit_rms, angular_step)) <= angular_step + 2e-4).all()
  # it turns away from the change's direction (P ← P − step)
  assert float(jnp.sum((new - w) * tangential)) <= 0.0


def test_a_radial_change_does_not_move_the_tangential_step():
  w, _ = _matrices(2)
  new = step_geometry.tangential_step(w, 3.0 * w, 0.05)
  np.testing.assert_allclose(new, w, atol=1e-6)


def test_step_stats_on_a_known_rotation():
  n = 8
  w = jnp.zeros((n, 2)).at[0, :].set(2.0)
  angle = 0.01
  new = jnp.zeros((n, 2)).at[0, :].set(2.0 * np.cos(angle)).at[1, :].set(2.0 * np.sin(angle))
  change = jnp.zeros((n, 2)).at[0, :].set(-1.0).at[1, :].set(1.0)  # half radial (shrinking), half tangential
  stats = step_geometry.step_stats(w, new, change)
  np.testing.assert_allclose(stats["angle_mean"], angle, rtol=1e-3)
  np.testing.assert_allclose(stats["tangential_share"], 0.5, rtol=1e-5)
  np.testing.assert_allclose(stats["radial_growth"], 1.0, rtol=1e-5)  # −ΔW·ŵ = +1: the step grows W
  np.testing.assert_allclose(stats["norm_ratio"], 1.0, rtol=1e-5)


def _state_and_inputs(cfg):
  key = jax.random.PRNGKey(0)
  widths = mlp.layer_widths(cfg.base_model)
  state = mlp.init(key, 16, widths, cfg.base_model)
  x = jax.random.uniform(jax.random.PRNGKey(1), (cfg.unroll.inner_batch_size, 16))
  theta = rule.init_theta(jax.random.PRNGKey(2), cfg.rule)
  return theta, state, x


def test_inner_step_modes():
  cfg = tiny.get_config()
  theta, state, x = _state_and_inputs(cfg)
  changes = rule.compute_updates(theta, state, x, cfg.rule, cfg.base_model)
  released = rule.inner_step(theta, state, x, cfg.rule, cfg.base_model)
  reference = rule.apply_updates(state, changes, cfg.rule.inner_lr)
  for a, b in zip(jax.tree_util.tree_leaves(released), jax.tree_util.tree_leaves(reference)):
    np.testing.assert_array_equal(a, b)  # "released" is the released step, unchanged
  cfg.rule.step_mode = "tangential"
  cfg.rule.angular_step = 0.02
  new = rule.inner_step(theta, state, x, cfg.rule, cfg.base_model)
  for old_layer, new_layer, change in zip(state["layers"], new["layers"], changes):
    for k in ("w", "v"):
      np.testing.assert_allclose(
        step_geometry.column_norms(new_layer[k]), step_geometry.column_norms(old_layer[k]), rtol=1e-5
      )
      assert (_angles(old_layer[k], new_layer[k]) <= 0.02 + 2e-4).all()
      assert float(jnp.max(jnp.abs(new_layer[k] - old_layer[k]))) > 0.0
    np.testing.assert_allclose(
      new_layer["b"], (1 - cfg.rule.inner_lr) * old_layer["b"] - cfg.rule.inner_lr * change["b"], rtol=1e-6
    )


def test_the_meta_gradient_flows_through_the_tangential_step():
  from meta_unsup_rules.learned_update import unroll

  cfg = tiny.get_config()
  cfg.rule.step_mode = "tangential"
  theta, state, x = _state_and_inputs(cfg)

  def loss(theta):
    new = rule.inner_step(theta, state, x, cfg.rule, cfg.base_model)
    return jnp.sum(jnp.square(mlp.features(new, x, cfg.base_model.activation)))

  grads = jax.grad(loss)(theta)
  leaves = jax.tree_util.tree_leaves(grads)
  assert all(np.isfinite(g).all() for g in leaves)
  assert sum(float(jnp.sum(jnp.abs(g))) for g in leaves) > 0.0
  assert unroll.make_unroll_fns(cfg) is not None


@pytest.mark.parametrize("field,value", [("step_mode", "radial"), ("angular_step", -0.1)])
def test_bad_step_settings_are_refused(field, value):
  cfg = tiny.get_config()
  cfg.rule[field] = value
  with pytest.raises(ConfigError) as info:
    rule.validate_config(cfg.rule)
  assert info.value.field == f"rule.{field}"


def test_rule_geometry_trace_compiles_once_per_config(tiny_cfg, tiny_theta):
  from meta_unsup_rules.evaluation import rule_geometry

  class _Task:
    input_dim = 64

    def unlabelled_batches(self, rng, n, batch):
      return rng.normal(size=(n, batch, self.input_dim)).astype(np.float32)

  rule_geometry._geometry_scan.cache_clear()
  first = rule_geometry.trace(tiny_theta, tiny_cfg, _Task(), seed=0, inner_steps=3)
  other = jax.tree_util.tree_map(lambda x: x * 1.5, tiny_theta)
  second = rule_geometry.trace(other, tiny_cfg, _Task(), seed=0, inner_steps=3)
  assert rule_geometry._geometry_scan.cache_info().misses == 1
  for result in (first, second):
    assert all(len(layer[name]) == 3 for layer in result["layers"] for name in rule_geometry.STAT_NAMES)
  assert (
    first["layers"][0]["norm_mean"] != second["layers"][0]["norm_mean"] or first["mixing"] != second["mixing"]
  )
