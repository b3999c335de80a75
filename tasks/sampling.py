"""Index sampling shared by the meta-training tasks, the evaluation tasks and the baselines.

Each function consumes its generator exactly as the code it replaced did, so results are
unchanged: one place per sampling scheme.
"""

from __future__ import annotations

import numpy as np


def class_pools(y: np.ndarray, num_classes: int) -> list[np.ndarray]:
  """Per class c, the indices i with y[i] == c (ascending)."""
  return [np.flatnonzero(y == c) for c in range(int(num_classes))]


def draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
  """k entries of `pool`: without replacement when it has k, else with replacement."""
  return pool[rng.choice(len(pool), k, replace=len(pool) < k)]


def epoch_indices(rng: np.random.Generator, pool: np.ndarray, total: int) -> np.ndarray:
  """`total` draws from `pool`: concatenated random permutations of it (epochs)."""
  if len(pool) == 0:
    raise ValueError("empty example pool")
  reps = -(-total // len(pool))
  return np.concatenate([pool[rng.permutation(len(pool))] for _ in range(reps)])[:total]
