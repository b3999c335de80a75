"""The "fused" implementation of the rule's h-network blocks (config `rule.implementation`).

Same function as the reference (`rule._conv_bn_relu`: SAME conv along one axis, Sonnet v1
batch norm over axes (0, 1) with a learned offset, ReLU), with a hand-written VJP
(`jax.custom_vjp`) so the backward pass is two matmuls and a few elementwise passes instead of
what autodiff derives from the shifted-copy convolution and the batch-norm statistics:

* the input gradient of the convolution is itself a convolution (flipped, transposed kernel)
  computed as one matmul over the stacked shifted copies of the output gradient, instead of a
  matmul to k·C_in channels followed by k slices, pads and adds;
* the batch-norm backward is the closed form rstd·(g − mean g − x̂·mean(g·x̂)) on the saved x̂;
* the convolution's bias is kept although it cancels in the batch norm: its gradient,
  Σ dy, is zero up to rounding in both paths, as in the reference.

Values equal the reference to float rounding (tests/test_rule_fused.py compares values and
meta-gradients of both paths).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _shift_stack(x: jax.Array, kernel: int, axis: int, left: int) -> jax.Array:
  """The k zero-padded shifted copies of x along `axis`, stacked on the channel axis."""
  if kernel == 1:
    return x
  pad = [(0, 0)] * x.ndim
  pad[axis] = (left, kernel - 1 - left)
  padded = jnp.pad(x, pad)
  length = x.shape[axis]
  taps = [jax.lax.slice_in_dim(padded, j, j + length, axis=axis) for j in range(kernel)]
  return jnp.concatenate(taps, axis=-1)


def _matmul(a, b, out_dtype):
  return jnp.matmul(a, b, preferred_element_type=out_dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _block(w, b, offset, x, axis, eps, operand_dtype):
  return _block_fwd(w, b, offset, x, axis, eps, operand_dtype)[0]


def _block_fwd(w, b, offset, x, axis, eps, operand_dtype):
  kernel, c_in, c_out = w.shape
  out_dtype = x.dtype
  w_op, x_op = w.astype(operand_dtype), x.astype(operand_dtype)
  stacked = _shift_stack(x_op, kernel, axis, (kernel - 1) // 2)
  y = _matmul(stacked, w_op.reshape(kernel * c_in, c_out), out_dtype) + b.astype(out_dtype)
  mean = jnp.mean(y, axis=(0, 1), keepdims=True)
  centred = y - mean
  rstd = jax.lax.rsqrt(jnp.mean(jnp.square(centred), axis=(0, 1), keepdims=True) + eps)
  x_hat = centred * rstd
  out = jax.nn.relu(x_hat + offset.astype(out_dtype))
  return out, (w_op, stacked, x_hat, rstd, out)


def _block_bwd(axis, eps, operand_dtype, residuals, g):
  del eps
  w_op, stacked, x_hat, rstd, out = residuals
  kernel, c_in, c_out = w_op.shape
  f32 = g.dtype
  g = jnp.where(out > 0, g, jnp.zeros_like(g))
  d_offset = jnp.sum(g, axis=(0, 1))
  g_mean = jnp.mean(g, axis=(0, 1), keepdims=True)
  gx_mean = jnp.mean(g * x_hat, axis=(0, 1), keepdims=True)
  dy = rstd * (g - g_mean - x_hat * gx_mean)
  dy_op = dy.astype(operand_dtype)
  rows = stacked.shape[0] * stacked.shape[1]
  d_b = jnp.sum(dy, axis=(0, 1))
  d_w = _matmul(stacked.reshape(rows, kernel * c_in).T, dy_op.reshape(rows, c_out), f32)
  # dx[i] = Σ_j dy[i − j + left] w[j]ᵀ: a convolution of dy with the flipped, transposed kernel.
  left = (kernel - 1) // 2
  w_flipped = jnp.transpose(w_op[::-1], (0, 2, 1)).reshape(kernel * c_out, c_in)
  dx = _matmul(_shift_stack(dy_op, kernel, axis, kernel - 1 - left), w_flipped, f32)
  # Autodiff of the reference returns the gradients of its rounded operands in their dtype.
  d_w, dx = d_w.astype(w_op.dtype).astype(f32), dx.astype(w_op.dtype).astype(f32)
  return d_w.reshape(kernel, c_in, c_out), d_b, d_offset, dx


_block.defvjp(_block_fwd, _block_bwd)


def conv_bn_relu(p: dict, x: jax.Array, axis: int, eps: float, operand_dtype=None) -> jax.Array:
  """relu(batch_norm(conv1d(x))) of `p` = {"conv": {w, b}, "bn": {offset}}, custom VJP."""
  operands = x.dtype if operand_dtype is None else jnp.dtype(operand_dtype)
  conv = p["conv"]
  return _block(conv["w"].astype(x.dtype), conv["b"], p["bn"]["offset"], x, axis, float(eps), operands)
