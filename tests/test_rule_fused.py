"""rule.implementation="fused" computes the reference's function: values and gradients agree.

Block level (every axis and kernel size the rule uses, float32 and bfloat16 operands), the
readouts' linear layer, the weight-gradient contraction and the merge of the 12 ΔW terms, rule
level (the updates of one inner step on every activation and several depths and widths) and
meta-gradient level (a k-step unroll of the tiny config) at rtol 1e-4 / atol 1e-5.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.configs import tiny
from meta_unsup_rules.learned_update import fused, nn, rule, unroll
from tests.conftest import TINY_CLASSES, TINY_INPUT_DIM, tiny_batches

RTOL, ATOL = 1e-4, 1e-5


def _block_params(key, kernel, c_in, c_out):
  k1, k2, k3 = jax.random.split(key, 3)
  conv = nn.init_conv(k1, kernel, c_in, c_out)
  conv["b"] = jax.random.normal(k2, (c_out,))
  return {"conv": conv, "bn": {"offset": 0.3 * jax.random.normal(k3, (c_out,))}}


def _assert_trees_close(a, b, rtol=RTOL, atol=ATOL):
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(
      np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=rtol, atol=atol, err_msg=str(path)
    )


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_block_values_and_gradients_match_autodiff(axis, kernel):
  key = jax.random.PRNGKey(kernel * 2 + axis)
  p = _block_params(key, kernel, 6, 5)
  x = jax.random.normal(jax.random.fold_in(key, 1), (7, 9, 6))
  cotangent = jax.random.normal(jax.random.fold_in(key, 2), (7, 9, 5))

  def loss(block):
    return lambda p, x: jnp.sum(block(p, x, axis, 1e-3) * cotangent)

  ref = rule._conv_bn_relu(p, x, axis, 1e-3)
  new = fused.conv_bn_relu(p, x, axis, 1e-3)
  assert float(jnp.mean(new > 0)) > 0.2  # the ReLU mask is exercised on both sides
  _assert_trees_close(new, ref)
  _assert_trees_close(
    jax.grad(loss(fused.conv_bn_relu), argnums=(0, 1))(p, x),
    jax.grad(loss(rule._conv_bn_relu), argnums=(0, 1))(p, x),
  )


@pytest.mark.parametrize("axis", [0, 1])
def test_block_bfloat16_operands_match_autodiff(axis):
  """bf16 operands, float32 accumulation: the same roundings as the reference, so close to bf16 eps."""
  key = jax.random.PRNGKey(7 + axis)
  p = _block_params(key, 3, 12, 8)
  x = jax.random.normal(jax.random.fold_in(key, 1), (16, 10, 12))
  cotangent = jax.random.normal(jax.random.fold_in(key, 2), (16, 10, 8))

  def loss(block):
    return lambda p, x: jnp.sum(block(p, x, axis, 1e-3, jnp.bfloat16) * cotangent)

  ref = rule._conv_bn_relu(p, x, axis, 1e-3, jnp.bfloat16)
  new = fused.conv_bn_relu(p, x, axis, 1e-3, jnp.bfloat16)
  assert new.dtype == ref.dtype == jnp.float32
  _assert_trees_close(new, ref)
  g_new = jax.grad(loss(fused.conv_bn_relu), argnums=(0, 1))(p, x)
  g_ref = jax.grad(loss(rule._conv_bn_relu), argnums=(0, 1))(p, x)
  # Both round the matmul operands and results to bf16 (eps 8e-3) but in different orders and
  # places, so entries agree to a few bf16 steps of their leaf's scale. The conv bias cancels
  # in the batch norm: its gradient is rounding noise around 0 in both, measured on the
  # offset gradient's scale.
  scale_of = lambda g: float(jnp.max(jnp.abs(g)))
  pairs = [
    (g_new[0]["bn"]["offset"], g_ref[0]["bn"]["offset"], scale_of(g_ref[0]["bn"]["offset"])),
    (g_new[0]["conv"]["b"], g_ref[0]["conv"]["b"], scale_of(g_ref[0]["bn"]["offset"])),
    (g_new[0]["conv"]["w"], g_ref[0]["conv"]["w"], scale_of(g_ref[0]["conv"]["w"])),
    (g_new[1], g_ref[1], scale_of(g_ref[1])),
  ]
  for a, b, scale in pairs:
    assert scale > 0 and scale_of(a - b) <= 2e-2 * scale


@pytest.mark.parametrize("rows", [512, 37, 263])  # chunked; one chunk; no divisor in [16, 256]
def test_weight_grad_is_the_transposed_product(rows):
  a = jax.random.normal(jax.random.PRNGKey(0), (rows, 12))
  g = jax.random.normal(jax.random.PRNGKey(1), (rows, 5))
  np.testing.assert_allclose(fused.weight_grad(a, g, jnp.float32), a.T @ g, rtol=RTOL, atol=ATOL)


def test_linear_values_and_gradients_match_autodiff():
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
  p = {"w": jax.random.normal(k1, (8, 6)), "b": jax.random.normal(k2, (6,))}
  x = jax.random.normal(k3, (20, 16, 8))

  def loss(linear):
    return lambda p, x: jnp.sum(jnp.sin(linear(p, x)))

  _assert_trees_close(fused.linear(p, x), nn.linear(p, x))
  _assert_trees_close(
    jax.grad(loss(fused.linear), argnums=(0, 1))(p, x), jax.grad(loss(nn.linear), argnums=(0, 1))(p, x)
  )


def test_merge_as_a_sum_matches_the_stacked_mix():
  ref_cfg, new_cfg = _cfg("reference").rule, _cfg("fused").rule
  keys = jax.random.split(jax.random.PRNGKey(5), len(rule.WEIGHT_TERMS) + 1)
  terms = {name: jax.random.normal(k, (10, 7)) for name, k in zip(rule.WEIGHT_TERMS, keys)}
  change = {"merge": {"w": jax.random.normal(keys[-1], (len(rule.WEIGHT_TERMS),)), "b": jnp.array(0.3)}}

  def loss(cfg):
    return lambda change, terms: jnp.sum(jnp.cos(rule.merge_weight_change(change, terms, cfg)))

  _assert_trees_close(
    rule.merge_weight_change(change, terms, new_cfg), rule.merge_weight_change(change, terms, ref_cfg)
  )
  _assert_trees_close(
    jax.grad(loss(new_cfg), argnums=(0, 1))(change, terms),
    jax.grad(loss(ref_cfg), argnums=(0, 1))(change, terms),
  )


def _cfg(implementation, activation="relu", widths=(24, 24), h_dtype="float32"):
  cfg = tiny.get_config()
  cfg.rule.implementation = implementation
  cfg.rule.h_dtype = h_dtype
  cfg.base_model.activation = activation
  cfg.base_model.hidden_widths = widths
  return cfg


def _state(cfg, input_dim=TINY_INPUT_DIM):
  widths = base_models.layer_widths(cfg.base_model)
  return base_models.init(jax.random.PRNGKey(3), input_dim, widths, cfg.base_model)


@pytest.mark.parametrize("activation", sorted(base_models.mlp.ACTIVATIONS))
def test_updates_match_reference_on_every_activation(activation):
  ref_cfg, new_cfg = _cfg("reference", activation), _cfg("fused", activation)
  theta = rule.init_theta(jax.random.PRNGKey(0), ref_cfg.rule)
  state = _state(ref_cfg)
  x = jax.random.normal(jax.random.PRNGKey(4), (16, TINY_INPUT_DIM))
  ref = rule.compute_updates(theta, state, x, ref_cfg.rule, ref_cfg.base_model)
  new = rule.compute_updates(theta, state, x, new_cfg.rule, new_cfg.base_model)
  _assert_trees_close(new, ref)


_CHILD = "META_UNSUP_FUSED_TEST_CHILD"


@pytest.mark.parametrize("widths", [(24, 24), (40,), (16, 32, 8, 20)])
@pytest.mark.parametrize("h_dtype", ["float32", "bfloat16"])
def test_meta_gradients_match_reference(widths, h_dtype, request):
  if os.environ.get(_CHILD) != "1":
    # In a fresh process: late in the whole suite (hundreds of compiled programs in one process)
    # this compile crashed XLA:CPU with a segmentation fault; alone it passes.
    root = pathlib.Path(__file__).resolve().parents[1]
    proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
      cwd=root,
      env=dict(os.environ, **{_CHILD: "1"}),
      capture_output=True,
      text=True,
      timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return
  ref_cfg = _cfg("reference", widths=widths, h_dtype=h_dtype)
  new_cfg = _cfg("fused", widths=widths, h_dtype=h_dtype)
  theta = rule.init_theta(jax.random.PRNGKey(0), ref_cfg.rule)
  state = _state(ref_cfg)
  batches = tiny_batches(ref_cfg, np.random.default_rng(0))
  ref = unroll.make_unroll_fns(ref_cfg).meta_gradient(theta, state, batches, num_classes=TINY_CLASSES)
  new = unroll.make_unroll_fns(new_cfg).meta_gradient(theta, state, batches, num_classes=TINY_CLASSES)
  assert float(jnp.max(jnp.abs(ref[3]["compute_h"]["blocks"][0]["conv"]["w"]))) > 0
  if h_dtype == "float32":
    _assert_trees_close(new, ref)
  else:
    # bf16 operands: both paths round the same tensors, but a rounding flip of a bf16 value
    # (eps 8e-3) moves a meta-gradient entry by more than 1e-4: compare directions instead.
    _assert_trees_close(new[:3], ref[:3], rtol=1e-2, atol=1e-3)
    a = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(new[3])])
    b = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(ref[3])])
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)
    assert cosine > 0.99, cosine


def test_implementation_is_validated():
  from meta_unsup_rules.util.config_check import ConfigError

  cfg = _cfg("fused")
  rule.validate_config(cfg.rule)
  cfg.rule.implementation = "fast"
  with pytest.raises(ConfigError, match="implementation"):
    rule.validate_config(cfg.rule)
