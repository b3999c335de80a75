"""Small pure-function layers for θ: Linear, Conv1D along one axis, BatchNorm.

Initialisation follows Sonnet v1 defaults, which the released rule was built with:
weights truncated-normal with σ = 1/√fan_in (cut at 2σ), biases zero. Conv kernels
are stored as [kernel, in, out]. Tensors inside the rule are laid out
[units, batch, channels]; a "batch-axis" convolution runs along axis 1 and a
"unit-axis" convolution along axis 0, with SAME zero padding (as TF's SAME).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _truncated_normal(key, shape, std):
  return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)


def init_linear(key, n_in: int, n_out: int) -> dict:
  return {
    "w": _truncated_normal(key, (n_in, n_out), 1.0 / np.sqrt(n_in)),
    "b": jnp.zeros((n_out,), jnp.float32),
  }


def init_conv(key, kernel: int, n_in: int, n_out: int) -> dict:
  return {
    "w": _truncated_normal(key, (kernel, n_in, n_out), 1.0 / np.sqrt(kernel * n_in)),
    "b": jnp.zeros((n_out,), jnp.float32),
  }


def init_bn(channels: int) -> dict:
  return {"offset": jnp.zeros((channels,), jnp.float32)}


def linear(params: dict, x: jax.Array) -> jax.Array:
  w = params["w"].astype(x.dtype)
  return x @ w + params["b"].astype(x.dtype)


def conv1d(params: dict, x: jax.Array, axis: int, operand_dtype=None) -> jax.Array:
  """SAME-padded 1-D cross-correlation of a [A0, A1, C] tensor along `axis`.

  The k shifted copies of the input are stacked on the channel axis so the whole
  convolution is one matmul with the [k*C_in, C_out] kernel. (XLA's native conv
  was 2x faster in isolation but its gradient inside the scanned unroll was 10x
  slower on CPU, with a 4x longer compile.)

  `operand_dtype` (e.g. bfloat16): the matmul's inputs are rounded to it and the
  products accumulate in x's dtype, which the output keeps (mixed precision).
  """
  out_dtype = x.dtype
  w = params["w"].astype(x.dtype)
  if operand_dtype is not None and jnp.dtype(operand_dtype) != x.dtype:
    x, w = x.astype(operand_dtype), w.astype(operand_dtype)
  matmul = lambda a, b: jnp.matmul(a, b, preferred_element_type=out_dtype)
  kernel, c_in, c_out = w.shape
  if kernel == 1:
    return matmul(x, w[0]) + params["b"].astype(out_dtype)
  left = (kernel - 1) // 2
  pad = [(0, 0)] * x.ndim
  pad[axis] = (left, kernel - 1 - left)
  padded = jnp.pad(x, pad)
  length = x.shape[axis]
  taps = [jax.lax.slice_in_dim(padded, j, j + length, axis=axis) for j in range(kernel)]
  stacked = jnp.concatenate(taps, axis=-1)
  return matmul(stacked, w.reshape(kernel * c_in, c_out)) + params["b"].astype(out_dtype)


def conv1d_reference(params: dict, x: jax.Array, axis: int) -> jax.Array:
  """`lax.conv_general_dilated` version of `conv1d` (the tests' reference)."""
  moved = jnp.moveaxis(x, axis, 1)  # [other, length, C]
  out = jax.lax.conv_general_dilated(
    moved,
    params["w"].astype(x.dtype),
    window_strides=(1,),
    padding="SAME",
    dimension_numbers=("NWC", "WIO", "NWC"),
    precision=jax.lax.Precision.HIGHEST,
  )
  return jnp.moveaxis(out + params["b"].astype(x.dtype), 1, axis)


def batch_norm(params: dict, x: jax.Array, eps: float) -> jax.Array:
  """Standardise every channel over (axis 0, axis 1), then add a learned offset.

  This is Sonnet v1's `BatchNorm(axis=[0, 1])`, which uses batch statistics in
  both training and test mode and has no learned scale.
  """
  mean = jnp.mean(x, axis=(0, 1), keepdims=True)
  centred = x - mean
  var = jnp.mean(jnp.square(centred), axis=(0, 1), keepdims=True)
  return centred * jax.lax.rsqrt(var + eps) + params["offset"].astype(x.dtype)
