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

"hybrid" (Metz et al., ICML 2019, "Understanding and correcting pathologies in the training
of learned optimizers"): the worker also backpropagates through the same perturbed unrolls,
and the learner mixes the two batch means by inverse-variance weighting, the variances
estimated over its batch (`inverse_variance_combine`). It trades PES's variance against
truncated backprop's bias, which the weighting does not see.

Pure functions on pytrees of arrays; arithmetic keeps the leaves' dtype and array type
(NumPy in, NumPy out), so the worker and the float64 tests share them.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np


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


def _batch_mean_and_variance(samples: Sequence):
  """Mean pytree over the samples and the total variance of that mean (trace over every entry)."""
  n = len(samples)
  mean = jax.tree_util.tree_map(lambda *g: np.mean(np.stack(g), axis=0), *samples)
  if n < 2:
    return mean, float("nan")
  var = sum(
    float(np.sum(np.var(np.stack(g).astype(np.float64), axis=0, ddof=1)))
    for g in zip(*[jax.tree_util.tree_leaves(s) for s in samples])
  )
  return mean, var / n


def inverse_variance_combine(pes: Sequence, tbptt: Sequence, eps: float = 1e-30):
  """(w·mean(pes) + (1 − w)·mean(tbptt), w), w = var_tbptt / (var_pes + var_tbptt).

  Each variance is that of its batch mean, summed over θ's entries (one scalar weight
  per estimator, as in Metz et al. 2019). With fewer than two samples there is no
  variance to estimate and the two means count equally. `eps` keeps w defined when both
  batches are constant.
  """
  if len(pes) != len(tbptt) or not pes:
    raise ValueError(
      f"inverse_variance_combine: need equal, non-empty batches, got {len(pes)} and {len(tbptt)}"
    )
  mean_pes, var_pes = _batch_mean_and_variance(pes)
  mean_tbptt, var_tbptt = _batch_mean_and_variance(tbptt)
  w = 0.5 if len(pes) < 2 else var_tbptt / (var_pes + var_tbptt + eps)
  dtype = lambda x: np.asarray(x).dtype
  combined = jax.tree_util.tree_map(
    lambda p, t: (w * p + (1.0 - w) * t).astype(dtype(p)), mean_pes, mean_tbptt
  )
  return combined, float(w)
