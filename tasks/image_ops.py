"""Image preprocessing and augmentation, vectorised numpy (no JAX, no global RNG).

Resizing is separable and linear: ``out = A_h @ img @ A_w.T`` per channel, with

* ``"bilinear"``: half-pixel-centre bilinear interpolation without anti-aliasing, source
  coordinate ``(i + 0.5) * in / out - 0.5`` clamped to the image (what TF2's
  ``tf.image.resize(..., "bilinear")`` does). Used for the evaluation sets (Tiny MNIST /
  Tiny Fashion-MNIST 28 -> 14, where it equals 2x2 mean pooling).
* ``"area"``: exact area averaging (every output pixel is the mean of the input area it
  covers; anti-aliased for any factor). Used for meta-training inputs (<= 16x16), e.g.
  CIFAR 32 -> 16, Tiny-ImageNet 64 -> 16, Omniglot 105 -> 16, Alphabet 32 -> 16.

Colour to grey: ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (as PIL "L" and
``tf.image.rgb_to_grayscale``).

Augmentation (meta-training only): per example an affine warp about the image centre,
rotation by ``angle`` degrees (positive = counter-clockwise as displayed, rows pointing
down) followed by a shift of ``(dx, dy)`` pixels (positive = right / down), bilinear
sampling with zero fill outside the image, then additive Gaussian noise of standard
deviation ``noise_std`` (not clipped). Parameters are drawn independently and uniformly:
``dx, dy ~ U[-max_shift, max_shift]`` (continuous, sub-pixel), ``angle ~
U[-max_rotation, max_rotation]``, ``noise_std ~ U[0, max_noise]``. The regression targets
are ``[dx / max_shift, dy / max_shift, angle / max_rotation, noise_std / max_noise]``
(each in [-1, 1], the last in [0, 1]; 0 where the maximum is 0).
"""

from __future__ import annotations

import functools

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
NUM_AUGMENT_TARGETS = 4
AUGMENT_TARGET_NAMES = ("shift_x", "shift_y", "rotation", "noise_std")
RESIZE_METHODS = ("area", "bilinear")


@functools.lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
  """[n_out, n_in] float32 matrix of one axis of a separable resize."""
  a = np.zeros((n_out, n_in), np.float64)
  scale = n_in / n_out
  if method == "bilinear":
    src = np.clip((np.arange(n_out) + 0.5) * scale - 0.5, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    a[np.arange(n_out), lo] += 1.0 - w
    a[np.arange(n_out), hi] += w
  elif method == "area":
    for k in range(n_out):
      start, stop = k * scale, (k + 1) * scale
      for j in range(int(np.floor(start)), min(int(np.ceil(stop)), n_in)):
        a[k, j] = max(0.0, min(stop, j + 1) - max(start, j))
    a /= a.sum(axis=1, keepdims=True)
  else:
    raise ValueError(f"unknown resize method {method!r}; expected one of {RESIZE_METHODS}")
  a.setflags(write=False)
  return a.astype(np.float32)


def resize(
  images: np.ndarray, size: int | tuple[int, int], method: str = "area", chunk: int = 8192
) -> np.ndarray:
  """Resizes [N, H, W] or [N, H, W, C] images (any numeric dtype) to float32 [N, h, w(, C)]."""
  h, w = (size, size) if isinstance(size, int) else size
  n, hi, wi = images.shape[:3]
  ah, aw = resize_matrix(hi, h, method), resize_matrix(wi, w, method)
  out = np.empty((n, h, w) + images.shape[3:], np.float32)
  for s in range(0, n, chunk):
    x = images[s : s + chunk].astype(np.float32)
    if x.ndim == 4:
      out[s : s + chunk] = np.einsum("hi,nijc,wj->nhwc", ah, x, aw, optimize=True)
    else:
      out[s : s + chunk] = np.matmul(np.matmul(ah, x), aw.T)
  return out


def to_grey(images: np.ndarray) -> np.ndarray:
  """[N, H, W, 3] -> float32 [N, H, W] luma; grey input is returned as float32."""
  if images.ndim == 4 and images.shape[-1] == 3:
    return np.tensordot(images.astype(np.float32), LUMA_WEIGHTS, axes=([-1], [0]))
  return images.astype(np.float32)


def affine_warp(images: np.ndarray, angle_deg: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
  """Rotates each image about its centre by ``angle_deg`` (CCW) then shifts it by (dx, dy).

  images: [N, H, W] or [N, H, W, C]; parameters: [N]. Bilinear sampling, zeros outside.
  """
  images = np.asarray(images, np.float32)
  n, h, w = images.shape[:3]
  theta = np.deg2rad(np.asarray(angle_deg, np.float64)).reshape(n, 1, 1)
  dx = np.asarray(dx, np.float64).reshape(n, 1, 1)
  dy = np.asarray(dy, np.float64).reshape(n, 1, 1)
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  yo, xo = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
  # Output (xo, yo) = R (xi - c) + c + shift with R = [[cos, sin], [-sin, cos]] in (x, y-down)
  # coordinates (CCW on screen). Invert: xi - c = R^T (xo - c - shift).
  u = xo[None] - cx - dx
  v = yo[None] - cy - dy
  cos, sin = np.cos(theta), np.sin(theta)
  xi = cos * u - sin * v + cx
  yi = sin * u + cos * v + cy
  x0 = np.floor(xi).astype(np.int64)
  y0 = np.floor(yi).astype(np.int64)
  wx = (xi - x0).astype(np.float32)
  wy = (yi - y0).astype(np.float32)
  flat = images.reshape((n, h * w) + images.shape[3:])
  base = (np.arange(n, dtype=np.int64) * (h * w)).reshape(n, 1, 1)
  flat = flat.reshape((n * h * w,) + images.shape[3:])
  out = np.zeros(images.shape, np.float32)
  extra = (slice(None),) * 3 + (None,) * (images.ndim - 3)
  for oy, ox, wgt in (
    (0, 0, (1 - wy) * (1 - wx)),
    (0, 1, (1 - wy) * wx),
    (1, 0, wy * (1 - wx)),
    (1, 1, wy * wx),
  ):
    yy, xx = y0 + oy, x0 + ox
    valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    idx = base + np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)
    out += flat[idx] * (wgt * valid)[extra]
  return out


def sample_augmentation(
  rng: np.random.Generator, n: int, max_shift: float, max_rotation: float, max_noise: float
) -> dict[str, np.ndarray]:
  """Draws per-example parameters (see module docstring)."""
  u = rng.uniform(-1.0, 1.0, size=(n, 3))
  noise = rng.uniform(0.0, 1.0, size=n)
  return dict(
    dx=u[:, 0] * max_shift, dy=u[:, 1] * max_shift, angle=u[:, 2] * max_rotation, noise_std=noise * max_noise
  )


def augmentation_targets(
  params: dict[str, np.ndarray], max_shift: float, max_rotation: float, max_noise: float
) -> np.ndarray:
  """float32 [N, 4]: (dx/max_shift, dy/max_shift, angle/max_rotation, noise_std/max_noise)."""

  def ratio(v, m):
    return v / m if m > 0 else np.zeros_like(v)

  return np.stack(
    [
      ratio(params["dx"], max_shift),
      ratio(params["dy"], max_shift),
      ratio(params["angle"], max_rotation),
      ratio(params["noise_std"], max_noise),
    ],
    axis=1,
  ).astype(np.float32)


def augment(
  rng: np.random.Generator, images: np.ndarray, max_shift: float, max_rotation: float, max_noise: float
) -> tuple[np.ndarray, np.ndarray]:
  """Random shift + rotation + additive noise. Returns (float32 images, float32 [N, 4] targets)."""
  n = images.shape[0]
  p = sample_augmentation(rng, n, max_shift, max_rotation, max_noise)
  out = images.astype(np.float32)
  if max_shift > 0 or max_rotation > 0:
    out = affine_warp(out, p["angle"], p["dx"], p["dy"])
  if max_noise > 0:
    std = p["noise_std"].astype(np.float32).reshape((n,) + (1,) * (images.ndim - 1))
    out = out + std * rng.standard_normal(out.shape, dtype=np.float32)
  return out, augmentation_targets(p, max_shift, max_rotation, max_noise)
