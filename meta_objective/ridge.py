"""The few-shot ridge-regression meta-objective (docs/method.md §3).

Fit ridge regression (λ, unpenalised bias) on labelled batch a's features, predict
batch b, compare row-normalised predictions with centred, normalised targets.
Everything is closed form and differentiable; the fit uses a Cholesky solve.

Targets (config `meta_objective.targets`):
  "labels_and_augmentation" — the paper: one-hot labels followed by the augmentation
                              regression targets, centred and scaled together.
  "labels"                  — [ours] ablation: the one-hot columns only. It exists because the
                              augmentation parameters (the noise level above all) can be
                              predicted from features that carry no class information
                              (what it did in meta-training: docs/results_earlier.md).
Centring (config `meta_objective.target_centring`, with `center_targets`):
  "joint"     — the paper and the released code: one scalar mean over every target column is
                subtracted, then the rows are scaled to unit mean squared norm. The one-hot block
                and the augmentation block share that centring, so a weight on either block would
                not set its share (scaled-down columns become near-constant and go to the bias).
  "per_group" — [ours] the one-hot block and the augmentation block are each centred by their own
                scalar mean and scaled to unit mean squared row norm; the augmentation block is then
                multiplied by `augmentation_weight` (0: only the labels count, the same loss as
                targets="labels"; 1: both blocks carry equal energy). With "joint" the augmentation
                holds ~58 % of the centred target energy on 10-way tasks (experiments/paper_track_arms).

Loss variants (config `meta_objective.loss`):
  "cosine"   — the paper's CosDist: mean over rows of 1 − cos(ŷ_b, y_b).
  "released" — the released code: Σ‖ŷ_b/‖ŷ_b‖ − y_b‖²/K + λ‖w‖²/K.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from meta_unsup_rules.util import config_compat
from meta_unsup_rules.util.config_check import Section

LOSSES = ("cosine", "released")
TARGETS = ("labels_and_augmentation", "labels")
CENTRINGS = ("joint", "per_group")
REDUCTIONS = ("mean", "sum")  # over the k states of an unroll
_EPS = 1e-8


def center_targets(y: jax.Array) -> jax.Array:
  """Subtract the global scalar mean, then scale so that mean_rows ‖y_row‖² = 1."""
  y = y - jnp.mean(y)
  return y * jax.lax.rsqrt(jnp.mean(jnp.sum(jnp.square(y), axis=1)) + _EPS)


def center_targets_per_group(y: jax.Array, num_classes: int, augmentation_weight: float) -> jax.Array:
  """The one-hot columns [:num_classes] and the augmentation columns each centred by their own
  scalar mean and scaled to unit mean squared row norm; the augmentation ones then weighted."""
  labels = center_targets(y[:, :num_classes])
  if y.shape[1] == num_classes:
    return labels
  augmentation = center_targets(y[:, num_classes:]) * augmentation_weight
  return jnp.concatenate([labels, augmentation], axis=1)


def solve_ridge(features: jax.Array, targets: jax.Array, ridge_lambda: float) -> jax.Array:
  """w = (AᵀA + diag(λ,…,λ,0))⁻¹ Aᵀy with A = [features, 1], by Cholesky; [F+1, T]."""
  num, _ = features.shape
  a = jnp.concatenate([features, jnp.ones((num, 1), features.dtype)], axis=1)
  penalty = jnp.full((a.shape[1],), ridge_lambda, features.dtype).at[-1].set(0.0)
  gram = a.T @ a + jnp.diag(penalty)
  factor = jax.scipy.linalg.cho_factor(gram, lower=True)
  return jax.scipy.linalg.cho_solve(factor, a.T @ targets)


def predict(w: jax.Array, features: jax.Array) -> jax.Array:
  return features @ w[:-1] + w[-1]


def select_targets(targets: jax.Array, num_classes: int, cfg) -> jax.Array:
  """The target columns the meta-objective regresses (config `meta_objective.targets`)."""
  choice = config_compat.read(cfg, "meta_objective.targets")
  if choice == TARGETS[0]:
    return targets
  if choice == "labels":
    return targets[..., :num_classes]
  raise ValueError(f"unknown meta_objective.targets {choice!r}; expected one of {TARGETS}")


def centre(targets: jax.Array, num_classes: int, cfg) -> jax.Array:
  """The selected targets centred and scaled as `meta_objective.target_centring` says."""
  centring = config_compat.read(cfg, "meta_objective.target_centring")
  if centring == "joint":
    return center_targets(targets)
  if centring == "per_group":
    weight = float(config_compat.read(cfg, "meta_objective.augmentation_weight"))
    return center_targets_per_group(targets, num_classes, weight)
  raise ValueError(f"unknown meta_objective.target_centring {centring!r}; expected one of {CENTRINGS}")


def _row_normalize(y: jax.Array) -> jax.Array:
  return y * jax.lax.rsqrt(jnp.sum(jnp.square(y), axis=1, keepdims=True) + _EPS)


def ridge_loss(features_a, targets_a, features_b, targets_b, labels_b, num_classes: int, cfg):
  """Meta-loss of one (a, b) evaluation and its statistics.

  Args:
    features_a, features_b: [K, F] top-layer features.
    targets_a, targets_b: [K, T] one-hot labels (first num_classes columns) and
      augmentation regression targets.
    labels_b: [K] integer labels of batch b (for accuracy).
  """
  targets_a = select_targets(targets_a, num_classes, cfg)
  targets_b = select_targets(targets_b, num_classes, cfg)
  if cfg.center_targets:
    targets_a, targets_b = centre(targets_a, num_classes, cfg), centre(targets_b, num_classes, cfg)
  w = solve_ridge(features_a, targets_a, cfg.ridge_lambda)
  raw_b = predict(w, features_b)
  pred_b = _row_normalize(raw_b) if cfg.normalize_predictions else raw_b
  k = features_b.shape[0]
  ridge_term = cfg.ridge_lambda * jnp.sum(jnp.square(w[:-1])) / k
  mse_test = jnp.sum(jnp.square(pred_b - targets_b)) / k
  if cfg.loss == "cosine":
    loss = jnp.mean(1.0 - jnp.sum(_row_normalize(raw_b) * _row_normalize(targets_b), axis=1))
  elif cfg.loss == "released":
    loss = mse_test + ridge_term
  else:
    raise ValueError(f"unknown meta_objective.loss {cfg.loss!r}; expected one of {LOSSES}")
  accuracy = jnp.mean(jnp.argmax(raw_b[:, :num_classes], axis=1) == labels_b)
  return loss, {"accuracy": accuracy, "mse_test": mse_test, "ridge_component": ridge_term}


def meta_objective(features_fn, x, targets, labels, num_classes: int, cfg):
  """Average meta-loss over n evaluations at one base-model state.

  Args:
    features_fn: maps a [2K, D] batch to [2K, F] features (one BN pass over both halves).
    x: [n, 2K, D]; rows [:K] of each evaluation are batch a, rows [K:] batch b.
    targets: [n, 2K, T]; labels: [n, 2K].
  """
  k = x.shape[1] // 2

  def one(xe, te, le):
    f = features_fn(xe)
    return ridge_loss(f[:k], te[:k], f[k:], te[k:], le[k:], num_classes, cfg)

  losses, stats = jax.vmap(one)(x, targets, labels)
  return jnp.mean(losses), jax.tree_util.tree_map(jnp.mean, stats)


def validate_config(mo_cfg) -> None:
  """Checks the `meta_objective` section (raises util.config_check.ConfigError)."""
  s = Section(mo_cfg, "meta_objective")
  s.one_of("loss", LOSSES)
  s.positive("ridge_lambda")
  s.int_at_least("num_evaluations", 1)
  s.int_at_least("samples_per_class", 1)
  s.boolean("center_targets")
  s.boolean("normalize_predictions")
  s.one_of("targets", TARGETS)
  centring = s.one_of("target_centring", CENTRINGS)
  weight = s.number("augmentation_weight", lo=0.0)
  if centring == "joint" and weight != 1.0:
    s.fail(
      "augmentation_weight", "1.0 with meta_objective.target_centring = 'joint' (a weight needs 'per_group')"
    )
  s.one_of("reduction", REDUCTIONS)
