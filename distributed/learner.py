"""The central learner: filters, averages and applies meta-gradients to θ with Adam.

Gradients arrive tagged with the θ version they were computed with. Those older than
`learner.max_staleness` updates are dropped, those with non-finite values too (both
counted); B = `learner.batch_size` accepted gradients are averaged, clipped to global
norm `learner.clip_norm`, and applied with Adam on a piecewise-constant schedule:
`learner.learning_rates` switching at `lr_boundaries`, in updates
(`lr_boundaries_unit="updates"`, configs/paper.py: the paper's 3e-4 → 1e-4 → 2e-5 at 100k and
150k) or, as runs stored before that setting did, in fractions of `num_updates` ("fraction":
extending such a run moves its past boundaries). `mixing_lr_multiplier` ≠ 1 gives the ΔW
mixing weights (`MIXING_LEAVES`) their own Adam with that multiple of the rate
(optax.multi_transform: its state has another structure than the single Adam's). An average
that is still non-finite is skipped and counted, never applied.
How a batch is averaged is fixed at construction, by the caller from the workers' estimator
(its `combine`, distributed/gradient_estimators.py): "mean" averages the results' gradients;
"inverse_variance" (hybrid workers, whose results carry a truncated-backprop gradient beside
the PES one) mixes the batch's two means by inverse-variance weighting
(distributed/pes.py) and reports the PES weight as `hybrid_weight_pes`.
"""

from __future__ import annotations

import jax
import numpy as np
import optax

from meta_unsup_rules.distributed import checkpoint, gradient_estimators
from meta_unsup_rules.distributed import pes as estimators
from meta_unsup_rules.util import config_compat, trees

BOUNDARY_UNITS = ("updates", "fraction")
# θ's ΔW mixing weights: the 12-vector and the bias of each `merge` (rule.py `_init_weight_change`).
MIXING_LEAVES = ("merge",)


def schedule_boundaries(cfg) -> tuple[int, ...]:
  """The updates at which the learning rate switches (`lr_boundaries` in its unit)."""
  unit = config_compat.read(cfg, "learner.lr_boundaries_unit")
  if unit == "updates":
    return tuple(int(b) for b in cfg.lr_boundaries)
  if unit == "fraction":
    return tuple(int(round(f * cfg.num_updates)) for f in cfg.lr_boundaries)
  raise ValueError(f"learner.lr_boundaries_unit {unit!r}: expected one of {BOUNDARY_UNITS}")


def learning_rate_schedule(cfg) -> optax.Schedule:
  values = tuple(float(v) for v in cfg.learning_rates)
  bounds = schedule_boundaries(cfg)
  if len(values) != len(bounds) + 1:
    raise ValueError(f"learner.learning_rates {values} needs one more entry than lr_boundaries {bounds}")
  return optax.join_schedules([optax.constant_schedule(v) for v in values], list(bounds))


def is_mixing_leaf(path) -> bool:
  """Whether a θ leaf (its key path) is one of the ΔW mixing weights."""
  return any(getattr(k, "key", None) in MIXING_LEAVES for k in path)


def _adam(cfg, multiplier: float) -> optax.GradientTransformation:
  schedule = learning_rate_schedule(cfg)
  scaled = schedule if multiplier == 1.0 else (lambda step: multiplier * schedule(step))
  return optax.chain(
    optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps),
    optax.scale_by_learning_rate(scaled),
  )


def make_optimizer(cfg) -> optax.GradientTransformation:
  """Clip the whole gradient, then Adam: one for θ, or (mixing_lr_multiplier ≠ 1) one for the
  mixing weights at that multiple of the rate and one for the rest."""
  multiplier = float(config_compat.read(cfg, "learner.mixing_lr_multiplier"))
  if multiplier == 1.0:
    return optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm),
      optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps),
      optax.scale_by_learning_rate(learning_rate_schedule(cfg)),
    )

  def labels(theta):
    return jax.tree_util.tree_map_with_path(lambda p, _: "mixing" if is_mixing_leaf(p) else "rest", theta)

  return optax.chain(
    optax.clip_by_global_norm(cfg.clip_norm),
    optax.multi_transform({"mixing": _adam(cfg, multiplier), "rest": _adam(cfg, 1.0)}, labels),
  )


def _mean(batch) -> tuple:
  return jax.tree_util.tree_map(lambda *g: np.mean(np.stack(g), axis=0), *[r.grads for r in batch]), {}


def _inverse_variance(batch) -> tuple:
  mean, weight_pes = estimators.inverse_variance_combine(
    [r.grads for r in batch], [r.grads_tbptt for r in batch]
  )
  return mean, {"hybrid_weight_pes": weight_pes}


# combine name -> (batch of results -> (mean gradient, the stats it adds to an applied update))
COMBINES = {gradient_estimators.MEAN: _mean, gradient_estimators.INVERSE_VARIANCE: _inverse_variance}


class Learner:
  """θ, its optimiser state and the update counter; `accept` then `apply` when `ready`."""

  def __init__(self, cfg, theta, combine: str = gradient_estimators.MEAN):
    if combine not in COMBINES:
      raise ValueError(f"Learner(combine={combine!r}): expected one of {tuple(COMBINES)}")
    self.cfg = cfg
    self.combine = combine
    self._combine = COMBINES[combine]
    self.optimizer = make_optimizer(cfg)
    self.theta = jax.tree_util.tree_map(np.asarray, theta)
    self.opt_state = jax.tree_util.tree_map(np.asarray, self.optimizer.init(self.theta))
    self.step = 0
    self.counters = {"stale": 0, "nonfinite": 0, "skipped_updates": 0, "accepted": 0}
    self.buffer: list[gradient_estimators.WorkerResult] = []
    self._update = jax.jit(self._update_fn)

  def _update_fn(self, theta, opt_state, grads):
    updates, opt_state = self.optimizer.update(grads, opt_state, theta)
    return optax.apply_updates(theta, updates), opt_state

  def accept(self, result: gradient_estimators.WorkerResult) -> bool:
    """Buffers one worker result unless it is too stale or non-finite."""
    # Inverse-variance weighting needs each result's truncated-backprop gradient.
    if self.combine == gradient_estimators.INVERSE_VARIANCE and result.grads_tbptt is None:
      raise ValueError(
        f"Learner(combine={self.combine!r}) got a result without grads_tbptt from worker "
        f"{result.worker_id}: its workers run another estimator than the one the learner was built for"
      )
    if self.step - result.theta_version > self.cfg.max_staleness:
      self.counters["stale"] += 1
      return False
    finite = trees.all_finite(result.grads) and trees.all_finite(result.grads_tbptt)  # None: no leaves
    if not (np.isfinite(result.loss) and finite):
      self.counters["nonfinite"] += 1
      return False
    self.buffer.append(result)
    self.counters["accepted"] += 1
    return True

  @property
  def ready(self) -> bool:
    return len(self.buffer) >= self.cfg.batch_size

  def apply(self) -> dict:
    """Averages the first B buffered gradients and updates θ; returns the update's stats."""
    batch, self.buffer = self.buffer[: self.cfg.batch_size], self.buffer[self.cfg.batch_size :]
    mean, combine_stats = self._combine(batch)
    norm = trees.global_norm(mean)
    stats = {
      "grad_norm": norm,
      "lr": float(learning_rate_schedule(self.cfg)(self.step)),
      "lr_mixing": float(learning_rate_schedule(self.cfg)(self.step))
      * float(config_compat.read(self.cfg, "learner.mixing_lr_multiplier")),
      "staleness": float(np.mean([self.step - r.theta_version for r in batch])),
    }
    if not np.isfinite(norm):
      self.counters["skipped_updates"] += 1
      stats["skipped"] = True
      return stats
    theta, opt_state = self._update(self.theta, self.opt_state, mean)
    theta = jax.tree_util.tree_map(np.asarray, theta)
    if not trees.all_finite(theta):
      self.counters["skipped_updates"] += 1
      stats["skipped"] = True
      return stats
    self.theta, self.opt_state = theta, jax.tree_util.tree_map(np.asarray, opt_state)
    self.step += 1
    stats["skipped"] = False
    stats["theta_norm"] = trees.global_norm(self.theta)
    stats.update(combine_stats)
    return stats

  # Checkpointing: arrays keyed by path and plain numbers (`distributed.checkpoint` stores
  # them without pickle); the structures are rebuilt from this code's templates on load.
  def get_state(self) -> dict:
    return {
      "theta": checkpoint.flatten(self.theta),
      "opt_state": checkpoint.flatten(self.opt_state),
      "step": int(self.step),
      "counters": {k: int(v) for k, v in self.counters.items()},
    }

  def set_state(self, saved: dict) -> None:
    """Restores a `get_state`; CheckpointError names a leaf of another name or shape."""
    theta = checkpoint.unflatten(self.theta, saved["theta"], what="checkpointed θ")
    opt_state = checkpoint.unflatten(
      jax.eval_shape(self.optimizer.init, theta), saved["opt_state"], what="checkpointed optimiser state"
    )
    self.theta = jax.tree_util.tree_map(np.asarray, theta)
    self.opt_state = jax.tree_util.tree_map(np.asarray, opt_state)
    self.step = int(saved["step"])
    self.counters = {k: int(v) for k, v in saved["counters"].items()}
    self.buffer = []

  def branch_from(self, saved: dict) -> str:
    """Starts from another run's `get_state`: θ, the step and the counters (the lineage's
    updates and meta-gradients go on), and Adam's state where its structure is this
    optimiser's. Returns "restored", or "fresh" when the optimisers differ (e.g. another
    `mixing_lr_multiplier`): then Adam's moments and count start afresh at the parent's θ."""
    theta = checkpoint.unflatten(self.theta, saved["theta"], what="the parent run's θ")
    self.theta = jax.tree_util.tree_map(np.asarray, theta)
    try:
      opt_state = checkpoint.unflatten(
        jax.eval_shape(self.optimizer.init, theta),
        saved["opt_state"],
        what="the parent run's optimiser state",
      )
      self.opt_state = jax.tree_util.tree_map(np.asarray, opt_state)
      optimizer = "restored"
    except checkpoint.CheckpointError:
      self.opt_state = jax.tree_util.tree_map(np.asarray, self.optimizer.init(self.theta))
      optimizer = "fresh"
    self.step = int(saved["step"])
    self.counters = {k: int(v) for k, v in saved["counters"].items()}
    self.buffer = []
    return optimizer
