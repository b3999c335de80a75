"""Finiteness and norms of pytrees of arrays, computed in NumPy float64 (host side)."""

from __future__ import annotations

import jax
import numpy as np


def all_finite(tree) -> bool:
  return all(bool(np.all(np.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


def global_norm(tree) -> float:
  return float(
    np.sqrt(
      sum(float(np.sum(np.square(np.asarray(leaf, np.float64)))) for leaf in jax.tree_util.tree_leaves(tree))
    )
  )
