"""PCA baseline: the top_width principal components of every unlabelled example seen so far.

Streaming covariance in float64. Before any data it is a random orthonormal projection,
the PCA analogue of "random init".
"""

from __future__ import annotations

import jax
import numpy as np

from meta_unsup_rules.base_models.baselines.mlp_baseline import BaselineInputs


class PCA:
  """Streaming PCA to `num_components` of every unlabelled example seen so far."""

  name = "pca"

  def __init__(self, key, input_dim: int, num_components: int):
    self.k = int(min(num_components, input_dim))
    self.count = 0
    self.total = np.zeros(input_dim)
    self.outer = np.zeros((input_dim, input_dim))
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (input_dim, self.k)), np.float64))
    self.mean, self.components = np.zeros(input_dim), q
    self.explained_variance = None

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "PCA":
    return cls(inputs.key, inputs.input_dim, int(inputs.base_cfg.top_width))

  def advance(self, unlabelled) -> None:
    x = np.asarray(unlabelled, np.float64).reshape(-1, self.total.size)
    if not len(x):
      return
    self.count += len(x)
    self.total += x.sum(0)
    self.outer += x.T @ x
    self.mean = self.total / self.count
    cov = self.outer / self.count - np.outer(self.mean, self.mean)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][: self.k]
    self.components, self.explained_variance = vecs[:, order], vals[order]

  def features(self, x) -> np.ndarray:
    return ((np.asarray(x, np.float64) - self.mean) @ self.components).astype(np.float32)

  def diagnostics(self) -> dict:
    return {}
