"""Random inputs in the layout of `learned_update.unroll`, without loading a data set.

Tests, `experiments.tools.inspect_rule` and the benchmark exercise the rule at chosen shapes; these
batches have the same keys, shapes and class-balanced a/b halves as the meta-training tasks,
so the unroll compiles and runs exactly as it does on real data.
"""

from __future__ import annotations

import numpy as np


def synthetic_batches(
  cfg,
  rng: np.random.Generator,
  k: int,
  input_dim: int,
  num_classes: int,
  num_regression: int = 0,
  fill: float | None = None,
) -> dict:
  """Random inputs in the layout of `learned_update.unroll` (class-balanced a/b halves).

  fill: every pixel that value instead of uniform noise (deterministic inputs for tests).
  """
  n = cfg.meta_objective.num_evaluations
  spc = cfg.meta_objective.samples_per_class
  bsz = cfg.unroll.inner_batch_size
  half = np.repeat(np.arange(num_classes), spc)
  labels = np.broadcast_to(np.concatenate([half, half]), (k, n, 2 * half.size)).astype(np.int32)
  onehot = np.eye(num_classes, dtype=np.float32)[labels]
  regression = rng.uniform(-1, 1, labels.shape + (num_regression,)).astype(np.float32)
  shape_x = (k, n, 2 * half.size, input_dim)
  if fill is None:
    unlabelled = rng.random((k, bsz, input_dim), dtype=np.float32)
    x = rng.random(shape_x, dtype=np.float32)
  else:
    unlabelled = np.full((k, bsz, input_dim), fill, np.float32)
    x = np.full(shape_x, fill, np.float32)
  return {
    "unlabelled": unlabelled,
    "x": x,
    "targets": np.concatenate([onehot, regression], axis=-1),
    "labels": labels,
  }
