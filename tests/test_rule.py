"""The learned update rule: conv equivalence, θ size, update invariants, robustness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.configs import local, paper, tiny
from meta_unsup_rules.learned_update import nn, rule


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv1d_matches_reference_values_and_gradients(axis, kernel):
  key = jax.random.PRNGKey(kernel + 10 * axis)
  params = nn.init_conv(key, kernel, 6, 5)
  params["b"] = jax.random.normal(jax.random.PRNGKey(3), (5,))
  x = jax.random.normal(jax.random.PRNGKey(4), (7, 9, 6))
  np.testing.assert_allclose(
    nn.conv1d(params, x, axis), nn.conv1d_reference(params, x, axis), rtol=1e-4, atol=1e-5
  )
  loss = lambda f: lambda p, x: jnp.sum(jnp.sin(f(p, x, axis)))
  g_fast = jax.grad(loss(nn.conv1d), argnums=(0, 1))(params, x)
  g_ref = jax.grad(loss(nn.conv1d_reference), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel", [1, 3])
def test_conv1d_bfloat16_operands_accumulate_in_float32(kernel):
  params = nn.init_conv(jax.random.PRNGKey(kernel), kernel, 6, 5)
  params["b"] = jax.random.normal(jax.random.PRNGKey(3), (5,))
  x = jax.random.normal(jax.random.PRNGKey(4), (7, 9, 6))
  low = nn.conv1d(params, x, 1, jnp.bfloat16)
  assert low.dtype == jnp.float32
  # = the float32 conv of the bf16-rounded operands (bf16 products are exact in float32).
  rounded = {"w": params["w"].astype(jnp.bfloat16).astype(jnp.float32), "b": params["b"]}
  np.testing.assert_allclose(
    low, nn.conv1d(rounded, x.astype(jnp.bfloat16).astype(jnp.float32), 1), rtol=1e-5, atol=1e-5
  )
  loss = lambda dtype: lambda p, x: jnp.sum(jnp.sin(nn.conv1d(p, x, 1, dtype)))
  g_low = jax.grad(loss(jnp.bfloat16), argnums=(0, 1))(params, x)
  g_ref = jax.grad(loss(None), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree_util.tree_leaves(g_low), jax.tree_util.tree_leaves(g_ref)):
    assert a.dtype == jnp.float32
    np.testing.assert_allclose(a, b, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("get_config", [paper.get_config, local.get_config, tiny.get_config])
@pytest.mark.parametrize("identical", [True, False])
def test_theta_size_matches_formula(get_config, identical):
  cfg = get_config().rule
  cfg.identical_updates = identical
  theta = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), cfg))
  counts = rule.theta_param_count_formula(cfg)
  for name, count in counts.items():
    assert rule.param_count(theta[name]) == count, name
  assert rule.param_count(theta) == sum(counts.values())


def test_paper_theta_size_near_spec_estimate():
  theta = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), paper.get_config().rule))
  assert abs(rule.param_count(theta) - 1.15e5) / 1.15e5 < 0.10


def test_zero_change_scales_parameters_by_one_minus_lr(tiny_state):
  lr = 1e-4
  zero = [
    jax.tree_util.tree_map(jnp.zeros_like, {k: l[k] for k in ("w", "b", "v")}) for l in tiny_state["layers"]
  ]
  new = rule.apply_updates(tiny_state, zero, lr)
  for old_l, new_l in zip(tiny_state["layers"], new["layers"]):
    for k in ("w", "b", "v"):
      np.testing.assert_array_equal(new_l[k], np.float32(1 - lr) * old_l[k])
  np.testing.assert_array_equal(new["perm"], tiny_state["perm"])


_JITTED = {}


def _updates(cfg, theta, state, x):
  # One jitted function per config: compiling once is much faster than running op by op.
  key = cfg.to_json()
  if key not in _JITTED:
    _JITTED[key] = jax.jit(lambda t, s, xx: rule.compute_updates(t, s, xx, cfg.rule, cfg.base_model))
  return _JITTED[key](theta, state, x)


def test_identical_updates_move_v_like_w(tiny_cfg, tiny_theta, tiny_state):
  x = jax.random.uniform(jax.random.PRNGKey(2), (16, 64))
  changes = _updates(tiny_cfg, tiny_theta, tiny_state, x)
  new = rule.apply_updates(tiny_state, changes, tiny_cfg.rule.inner_lr)
  lr = tiny_cfg.rule.inner_lr
  for old_l, new_l, ch in zip(tiny_state["layers"], new["layers"], changes):
    np.testing.assert_array_equal(ch["v"], ch["w"])
    moved_w = new_l["w"] - (1 - lr) * old_l["w"]
    moved_v = new_l["v"] - (1 - lr) * old_l["v"]
    np.testing.assert_allclose(moved_v, moved_w, atol=1e-9)
    assert float(jnp.max(jnp.abs(moved_w))) > 0


def test_separate_backward_updates_differ(tiny_cfg, tiny_state):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.rule.identical_updates = False
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  assert "backward" in theta
  x = jax.random.uniform(jax.random.PRNGKey(2), (16, 64))
  for ch in _updates(cfg, theta, tiny_state, x):
    assert float(jnp.max(jnp.abs(ch["v"] - ch["w"]))) > 1e-3


def test_weight_and_bias_changes_respect_their_normalisation(tiny_cfg, tiny_theta, tiny_state):
  x = jax.random.uniform(jax.random.PRNGKey(5), (16, 64))
  changes = _updates(tiny_cfg, tiny_theta, tiny_state, x)
  scale = tiny_cfg.rule.anti_collapse_scale
  for layer, ch in zip(tiny_state["layers"], changes):
    w = layer["w"]
    w_hat = w / jnp.sqrt(jnp.mean(w**2, axis=0, keepdims=True) + 1e-6)
    normalised = ch["w"] + scale * w_hat  # column-normalised with eps 1: mean square < 1
    col_ms = jnp.mean(normalised**2, axis=0)
    assert bool(jnp.all(col_ms < 1.0)) and bool(jnp.all(col_ms > 0.0))
    assert float(jnp.mean(ch["b"])) >= -1e-6  # biases may not all shrink...
    assert float(jnp.mean(ch["b"] ** 2)) < 1.0  # ...and their change is normalised


@pytest.mark.parametrize("kind", ["zeros", "constant", "dead_units"])
def test_no_nan_for_degenerate_inputs(tiny_cfg, tiny_theta, tiny_state, kind):
  state = tiny_state
  x = jax.random.uniform(jax.random.PRNGKey(0), (16, 64))
  if kind == "zeros":
    x = jnp.zeros_like(x)
  elif kind == "constant":
    x = jnp.full_like(x, 0.7)
  else:  # a hidden layer whose units all receive zero weights
    layers = list(state["layers"])
    layers[0] = dict(layers[0], w=jnp.zeros_like(layers[0]["w"]), b=-jnp.ones_like(layers[0]["b"]))
    state = dict(state, layers=tuple(layers))
  new = rule.apply_updates(state, _updates(tiny_cfg, tiny_theta, state, x), tiny_cfg.rule.inner_lr)
  for leaf in jax.tree_util.tree_leaves(new):
    assert bool(jnp.all(jnp.isfinite(leaf)))


@pytest.mark.parametrize("input_dim,widths", [(1000, (40, 8)), (196, (3, 70, 9, 5, 8))])
def test_updates_have_parameter_shapes(tiny_cfg, tiny_theta, input_dim, widths):
  state = base_models.init(jax.random.PRNGKey(0), input_dim, widths, tiny_cfg.base_model)
  x = jax.random.uniform(jax.random.PRNGKey(1), (16, input_dim))
  changes = _updates(tiny_cfg, tiny_theta, state, x)
  for layer, ch in zip(state["layers"], changes):
    for k in ("w", "b", "v"):
      assert ch[k].shape == layer[k].shape
      assert bool(jnp.all(jnp.isfinite(ch[k])))


def _hebb_change(x, w, hebb_term):
  """The "hebb" candidate change for inputs x [batch, n_in] and weights w [n_in, n_out], no readouts."""
  (batch, n_in), n_out = x.shape, w.shape[1]
  readouts = {n: np.zeros((n_in, batch)) for n in rule.READOUT_NAMES}
  upper = {n: np.zeros((n_out, batch)) for n in rule.READOUT_NAMES}
  ux = x @ w  # any outputs: the Oja terms do not read them
  terms = rule.weight_change_terms(
    jnp.asarray(w), upper, readouts, jnp.asarray(ux), jnp.asarray(x), batch, 1, hebb_term
  )
  return np.asarray(terms["hebb"], np.float64)


def _oja_case(seed=0, batch=400, n_in=12, n_out=3):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch, n_in)) * np.linspace(3.0, 0.5, n_in)
  lx = (x - x.mean(0)) / x.std(0)  # what the term's standardisation leaves unchanged
  eigvals, eigvecs = np.linalg.eigh(lx.T @ lx / batch)
  return lx, eigvecs[:, ::-1][:, :n_out], lambda w, hebb_term: _hebb_change(lx, w, hebb_term)


def test_oja_hebb_term_vanishes_on_principal_subspace_and_raises_captured_variance():
  lx, top, term = _oja_case()
  n_in = lx.shape[1]
  w = top * np.sqrt(n_in) * np.array([1.0, -2.0, 0.5])  # unit-norm eigenvectors, any column scales
  assert np.abs(term(w, "oja")).max() < 1e-4  # Oja's fixed point: nothing to change
  assert np.abs(term(w, "released")).max() > 1e-2  # the released term has no such fixed point
  rng = np.random.default_rng(1)
  w = rng.normal(size=top.shape)
  change = term(w, "oja")
  assert np.abs(change).max() > 1e-2

  def captured(w):  # variance of lx in the span of w's columns
    q = np.linalg.qr(w)[0]
    return np.trace(q.T @ (lx.T @ lx) @ q)

  # The rule applies W ← W − lr·change: along −change the captured variance grows.
  assert captured(w - 1e-3 * change * np.sqrt(n_in)) > captured(w)


def test_oja_centred_term_vanishes_on_principal_subspace_of_unstandardised_inputs():
  # Inputs with unequal variances: standardising per unit (the "oja" term) changes their principal
  # subspace; centring and one global scale ("oja_centred", as Oja's baseline) keeps it.
  rng = np.random.default_rng(2)
  batch, n_in, n_out = 400, 12, 3
  x = rng.normal(size=(batch, n_in)) @ rng.normal(size=(n_in, n_in)) * np.linspace(3.0, 0.3, n_in) + 5.0
  centred = x - x.mean(0)
  top = np.linalg.eigh(centred.T @ centred / batch)[1][:, ::-1][:, :n_out]
  w = top * np.sqrt(n_in) * np.array([2.0, 1.0, -0.5])
  assert np.abs(_hebb_change(x, w, "oja_centred")).max() < 1e-4
  assert np.abs(_hebb_change(x, w, "oja")).max() > 1e-2
