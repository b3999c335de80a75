"""Persistent Evolution Strategies (PES): an unbiased meta-gradient from truncated unrolls.

Truncated backprop (`unroll.meta_gradient`, config `unroll.estimator = "tbptt"`) treats the
base-model state entering a truncation as a constant, so it misses how θ shaped that state
in the earlier truncations of the task: a biased estimate of the full-horizon gradient.
PES (Vicol, Metz, Sohl-Dickstein, ICML 2021) drops the bias at the cost of variance: each
truncation j unrolls two states carried separately across the task, one with θ + ε_j and
one with θ − ε_j (ε_j ~ N(0, σ²I), fresh per truncation), and with ξ_j = ε_1 + … + ε_j the
perturbations accumulated since the task started,

  ĝ_j = ξ_j · (L_j(θ + ε) − L_j(θ − ε)) / (2σ²),

which, summed over the truncations of a task, is unbiased for the gradient of the task's
Gaussian-smoothed total loss (→ the full gradient as σ → 0). Pairs of draws are averaged.

Pure functions on pytrees of arrays; arithmetic keeps the leaves' dtype and array type
(NumPy in, NumPy out), so the worker and the float64 tests share them.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

ESTIMATORS = ("tbptt", "pes")


def sample_perturbation(key: jax.Array, theta, sigma: float):
  """ε ~ N(0, σ²I) with θ's structure, shapes and dtypes, one independent stream per leaf."""
  leaves, treedef = jax.tree_util.tree_flatten(theta)
  keys = jax.random.split(key, max(len(leaves), 1))
  eps = [
    np.asarray(jax.random.normal(k, np.shape(leaf), np.float32), dtype=np.asarray(leaf).dtype) * sigma
    for k, leaf in zip(keys, leaves)
  ]
  return jax.tree_util.tree_unflatten(treedef, eps)


def antithetic(theta, eps):
  """(θ + ε, θ − ε)."""
  plus = jax.tree_util.tree_map(lambda t, e: t + e, theta, eps)
  minus = jax.tree_util.tree_map(lambda t, e: t - e, theta, eps)
  return plus, minus


def zeros_like(theta):
  """ξ at the start of a task: no perturbation has shaped the state yet."""
  return jax.tree_util.tree_map(lambda t: np.zeros(np.shape(t), np.asarray(t).dtype), theta)


def accumulate(xi, eps):
  """ξ + ε: the state entering the next truncation was shaped by every perturbation so far."""
  return jax.tree_util.tree_map(lambda a, b: a + b, xi, eps)


def pes_estimate(xi, loss_plus, loss_minus, sigma: float):
  """ĝ = ξ · (L(θ+ε) − L(θ−ε)) / (2σ²) for one antithetic pair.

  The losses may be arrays (e.g. one entry per independent toy trial); they broadcast
  against ξ's leaves.
  """
  scale = (loss_plus - loss_minus) / (2.0 * sigma * sigma)
  return jax.tree_util.tree_map(lambda x: x * scale, xi)


def pes_gradient(xis: Sequence, losses_plus: Sequence, losses_minus: Sequence, sigma: float):
  """The PES estimate averaged over antithetic pairs (one ξ and two losses per pair)."""
  if not (len(xis) == len(losses_plus) == len(losses_minus) >= 1):
    raise ValueError(
      f"pes_gradient: need one ξ and two losses per pair, "
      f"got {len(xis)}, {len(losses_plus)}, {len(losses_minus)}"
    )
  estimates = [pes_estimate(x, lp, lm, sigma) for x, lp, lm in zip(xis, losses_plus, losses_minus)]
  n = len(estimates)
  return jax.tree_util.tree_map(lambda *leaves: sum(leaves[1:], leaves[0]) / n, *estimates)
