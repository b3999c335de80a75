"""The "fused" implementation of the rule (config `rule.implementation`): the same function as the
reference with hand-written VJPs and a throughput-minded layout (docs/performance.md, issue 25).

* conv + batch norm + ReLU blocks of the h network and the top-delta net (`conv_bn_relu`, the
  reference is `rule._conv_bn_relu`): the batch-norm backward is the closed form
  rstd·(g − mean g − x̂·mean(g·x̂)) on the saved x̂ (the ReLU mask from x̂ too); one stack of shifted
  copies of the output gradient serves both gradients: the input gradient is that stack times the
  flipped kernel (one matmul), the weight gradient is x, transposed once, times the same stack;
* the linear readouts of h (`linear`, the reference is `nn.linear`): the weight gradient of
  `weight_grad`, a contraction over (chunks, rows) that XLA:CPU lays out as a plain matmul (the
  transposed-operand dot autodiff emits, contracting over the long rows axis, runs ~3× slower);
* the convolution's bias is kept although it cancels in the batch norm: its gradient, Σ dy, is zero
  up to rounding in both paths, as in the reference.

`rule.merge_weight_change` mixes the 12 ΔW terms as a weighted sum in this implementation (no
[n_in, n_out, 12] stack). Values equal the reference to float rounding (tests/test_rule_fused.py
compares blocks, readouts, updates and meta-gradients of both paths).
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


def _row_chunk(rows: int) -> int:
  """The largest divisor of `rows` in [16, 256], or 0 when there is none."""
  for chunk in range(min(rows, 256), 15, -1):
    if rows % chunk == 0:
      return chunk
  return 0


def weight_grad(a: jax.Array, g: jax.Array, out_dtype) -> jax.Array:
  """aᵀ g for [rows, c] × [rows, c'] with many rows: the gradient of a weight matrix.

  Written as a contraction over (chunks, rows per chunk) so that XLA:CPU lays aᵀ out in memory
  and hands a plain matmul to its dot library; the direct aᵀ g runs as a transposed-operand dot
  at about a third of the speed (benchmarks/implementations.py, docs/performance.md).
  """
  rows = a.shape[0]
  chunk = _row_chunk(rows)
  if not chunk:
    return _matmul(a.T, g, out_dtype)
  a3, g3 = a.reshape(rows // chunk, chunk, a.shape[1]), g.reshape(rows // chunk, chunk, g.shape[1])
  return jnp.einsum("nrc,nrd->cd", a3, g3, preferred_element_type=out_dtype)


@jax.custom_vjp
def _dense(w, b, x):
  return _matmul(x, w, x.dtype) + b


def _dense_fwd(w, b, x):
  return _dense(w, b, x), (w, x)


def _dense_bwd(residuals, g):
  w, x = residuals
  rows = g.size // g.shape[-1]
  d_w = weight_grad(x.reshape(rows, x.shape[-1]), g.reshape(rows, g.shape[-1]), g.dtype)
  d_b = jnp.sum(g.reshape(rows, g.shape[-1]), axis=0)
  return d_w, d_b, _matmul(g, w.T, g.dtype)


_dense.defvjp(_dense_fwd, _dense_bwd)


def linear(params: dict, x: jax.Array) -> jax.Array:
  """x @ w + b over x's last axis (nn.linear's function) with the weight gradient of `weight_grad`."""
  return _dense(params["w"].astype(x.dtype), params["b"].astype(x.dtype), x)


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
  return out, (w_op, x_op, x_hat, rstd, offset.astype(out_dtype))


def _block_bwd(axis, eps, operand_dtype, residuals, g):
  del eps
  w_op, x_op, x_hat, rstd, offset = residuals
  kernel, c_in, c_out = w_op.shape
  f32 = g.dtype
  g = jnp.where(x_hat + offset > 0, g, jnp.zeros_like(g))
  d_offset = jnp.sum(g, axis=(0, 1))
  g_mean = jnp.mean(g, axis=(0, 1), keepdims=True)
  gx_mean = jnp.mean(g * x_hat, axis=(0, 1), keepdims=True)
  dy = rstd * (g - g_mean - x_hat * gx_mean)
  dy_op = dy.astype(operand_dtype)
  rows = x_op.shape[0] * x_op.shape[1]
  d_b = jnp.sum(dy, axis=(0, 1))
  # dx[i] = Σ_j dy[i − j + left] w[j]ᵀ: a convolution of dy with the flipped, transposed kernel,
  # one matmul over the stacked shifted copies of dy. The same copies give the weight gradient:
  # w[j]'s is Σ_i x[i]ᵀ dy[i − j + left], the (k − 1 − j)-th tap of the stack, contracted with x
  # over the long rows axis by `weight_grad` (a plain matmul after one transpose of x).
  left = (kernel - 1) // 2
  stacked_dy = _shift_stack(dy_op, kernel, axis, kernel - 1 - left).reshape(rows, kernel * c_out)
  w_flipped = jnp.transpose(w_op[::-1], (0, 2, 1)).reshape(kernel * c_out, c_in)
  dx = _matmul(stacked_dy, w_flipped, f32).reshape(x_op.shape)
  d_w = weight_grad(x_op.reshape(rows, c_in), stacked_dy, f32).reshape(c_in, kernel, c_out)
  d_w = jnp.transpose(d_w[:, ::-1], (1, 0, 2))
  # Autodiff of the reference returns the gradients of its rounded operands in their dtype.
  d_w, dx = d_w.astype(w_op.dtype).astype(f32), dx.astype(w_op.dtype).astype(f32)
  return d_w, d_b, d_offset, dx


_block.defvjp(_block_fwd, _block_bwd)


def conv_bn_relu(p: dict, x: jax.Array, axis: int, eps: float, operand_dtype=None) -> jax.Array:
  """relu(batch_norm(conv1d(x))) of `p` = {"conv": {w, b}, "bn": {offset}}, custom VJP."""
  operands = x.dtype if operand_dtype is None else jnp.dtype(operand_dtype)
  conv = p["conv"]
  return _block(conv["w"].astype(x.dtype), conv["b"], p["bn"]["offset"], x, axis, float(eps), operands)
