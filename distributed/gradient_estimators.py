"""The meta-gradient estimators a worker runs, one class per `unroll.estimator`, and its result type.

A worker (distributed/worker.py) keeps the task, its horizon and its random stream; its estimator
keeps what has to be carried from one truncation of the task to the next, and turns a truncation's
batches into the gradient the learner receives (the maths is distributed/pes.py's):

* `TruncatedBackprop` ("tbptt") carries the base-model state. A truncation backpropagates through
  its k steps, the state's gradient stopped at the truncation's start, and returns that
  meta-gradient; the state it reaches starts the next truncation.
* `PES` ("pes") carries, per antithetic pair, two base-model states, unrolled (forward only) with
  θ + ε and θ − ε, and ξ, the perturbations accumulated since the task started. A truncation draws
  one ε per pair and returns the PES estimate averaged over the pairs.
* `Hybrid` ("hybrid") carries what PES carries and backpropagates through the same ± unrolls: it
  returns the PES estimate and, as `grads_tbptt`, the mean of the two truncated-backprop gradients,
  which the learner mixes with the PES one by inverse-variance weighting (its `combine`).

`make_estimator(cfg)` is the one place that reads `unroll.estimator`. A new task or a staggered
start hands the estimator one base-model state (`start`; PES pairs then start together with ξ = 0);
a truncation whose new state is not finite leaves the carried state as it was and says so, and the
worker draws a new task. The carried state goes into the worker's checkpoint under "state"
(truncated backprop; None for PES) and "pes" (PES and hybrid only: per pair "plus", "minus", "xi").

`WorkerResult` is what a worker returns per call: NumPy arrays and plain values, so that Ray can
send it between processes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from meta_unsup_rules.distributed import checkpoint
from meta_unsup_rules.distributed import pes as estimators
from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.util import trees

# How the learner mixes a batch of results (distributed/learner.py `Learner(combine=...)`).
MEAN = "mean"
INVERSE_VARIANCE = "inverse_variance"


@dataclasses.dataclass(frozen=True, eq=False)  # eq: pytrees of arrays have no single truth value
class WorkerResult:
  """One worker call: the meta-gradient (θ's structure, NumPy leaves) and where it came from."""

  grads: Any
  loss: float
  metrics: dict[str, float]
  theta_version: int  # the learner step of the θ it was computed with
  dataset: str
  inner_steps: int  # k, this truncation's length
  task_step: int  # inner steps of the task done after this truncation
  worker_id: int
  seconds: float
  backend: str
  grads_tbptt: Any = None  # hybrid: the mean truncated-backprop gradient of the ± unrolls
  node_id: str | None = None  # Ray: the node that computed it (None in-process)
  slot: int = 0  # which of the worker's tasks (workers.tasks_per_call > 1), 0 for the first


class Truncation(NamedTuple):
  """What one truncation of an estimator gives the worker (loss and metrics as the unroll returned them)."""

  loss: Any
  metrics: dict
  grads: Any
  grads_tbptt: Any  # None but for hybrid
  finite: bool  # False: the new state diverged and was not kept; the task is over


class GradientEstimator(Protocol):
  """A meta-gradient estimator and the state it carries across a task's truncations."""

  name: str  # its `unroll.estimator` value
  combine: str  # how the learner mixes a batch of its results: MEAN or INVERSE_VARIANCE

  def start(self, state) -> None:
    """Carries `state` (a task's initial base-model state, or a staggered start) as the task's start."""

  def reference_state(self):
    """The base-model state the task has reached with the unperturbed θ (None before a task)."""

  def truncation(self, fns, theta, batches: dict, num_classes: int, rng: np.random.Generator) -> Truncation:
    """One truncation of the carried state(s) with `theta` on `batches`; keeps the new state if finite."""

  @staticmethod
  def truncation_many(ests, fns, theta, batches_list, num_classes: int, rngs) -> list:
    """`truncation` of N estimators of this class (tasks of one shape, each with its batches and
    random stream) in one vmapped call: the results N `truncation` calls give."""

  def reset(self) -> None:
    """Drops the carried state (the worker drops its task)."""

  def get_state(self, carried: bool = True) -> dict:
    """The worker checkpoint's fields for the carried state; `carried=False`: the same fields, None."""

  def set_state(self, saved: dict, state_template, who: str) -> None:
    """Restores `get_state`'s fields from a worker checkpoint `saved`; with `state_template` None
    (no task was saved) the carried state is dropped. CheckpointError names `who` and the field."""


def _finite(tree) -> bool:
  return trees.all_finite(tree)


def stack_trees(trees_list):
  """Pytrees of one structure stacked leaf by leaf on a new leading (task) axis."""
  return jax.tree_util.tree_map(lambda *x: np.stack([np.asarray(v) for v in x]), *trees_list)


def tree_slice(tree, i: int):
  """Entry `i` of a pytree stacked on its leading axis, as NumPy arrays."""
  return jax.tree_util.tree_map(lambda x: np.asarray(x[i]), tree)


class TruncatedBackprop:
  """Truncated backprop through time: carries one base-model state."""

  name = "tbptt"
  combine = MEAN

  def __init__(self):
    self.state = None

  @classmethod
  def from_config(cls, cfg) -> TruncatedBackprop:
    del cfg  # nothing to configure
    return cls()

  def start(self, state) -> None:
    self.state = state

  def reference_state(self):
    return self.state

  def truncation(self, fns, theta, batches: dict, num_classes: int, rng: np.random.Generator) -> Truncation:
    del rng  # deterministic given its batches
    loss, metrics, new_state, grads = fns.meta_gradient(theta, self.state, batches, num_classes=num_classes)
    new_state = jax.tree_util.tree_map(np.asarray, new_state)
    finite = _finite(new_state)
    if finite:
      self.state = new_state
    return Truncation(loss, metrics, grads, None, finite)

  @staticmethod
  def truncation_many(ests, fns, theta, batches_list, num_classes: int, rngs) -> list[Truncation]:
    """`truncation` of N estimators (tasks of one shape) in one vmapped call; the same results."""
    del rngs
    states = stack_trees([e.state for e in ests])
    loss, metrics, new_states, grads = fns.meta_gradient_many(
      theta, states, stack_trees(batches_list), num_classes=num_classes
    )
    out = []
    for i, e in enumerate(ests):
      new_state = tree_slice(new_states, i)
      finite = _finite(new_state)
      if finite:
        e.state = new_state
      out.append(Truncation(loss[i], tree_slice(metrics, i), tree_slice(grads, i), None, finite))
    return out

  def reset(self) -> None:
    self.state = None

  def get_state(self, carried: bool = True) -> dict:
    if not carried or self.state is None:
      return {"state": None}
    return {"state": checkpoint.flatten(self.state)}

  def set_state(self, saved: dict, state_template, who: str) -> None:
    if state_template is None:
      self.state = None
      return
    if saved["state"] is None:
      raise checkpoint.CheckpointError(
        f"{who}'s checkpoint has no base-model state: it was written with "
        "unroll.estimator = 'pes' or 'hybrid'; resume with that one or use a new --workdir"
      )
    self.state = checkpoint.unflatten(state_template, saved["state"], what=f"{who}'s base-model state")


class PES:
  """Persistent evolution strategies: carries `pairs`, one {"plus", "minus", "xi"} per antithetic pair."""

  name = "pes"
  combine = MEAN

  def __init__(self, num_pairs: int, sigma: float, rule_cfg):
    self.num_pairs = int(num_pairs)
    self.sigma = sigma
    self.rule_cfg = rule_cfg  # θ's structure, for the ξ of a checkpoint
    self.pairs = None

  @classmethod
  def from_config(cls, cfg) -> PES:
    return cls(cfg.unroll.pes_pairs, cfg.unroll.pes_sigma, cfg.rule)

  def start(self, state) -> None:
    # ξ is filled in with θ's structure on the first truncation (θ is not known here).
    self.pairs = [{"plus": state, "minus": state, "xi": None} for _ in range(self.num_pairs)]

  def reference_state(self):
    # Only meaningful at a task's start, where every pair holds the same unperturbed state.
    return None if self.pairs is None else self.pairs[0]["plus"]

  def _unroll(self, fns, theta, state, batches: dict, num_classes: int):
    """(loss, metrics, new state, truncated-backprop gradient or None) of one ± unroll."""
    loss, metrics, state = fns.unroll_loss(theta, state, batches, num_classes=num_classes)
    return loss, metrics, state, None

  def _plan(self, theta, rng: np.random.Generator) -> list[dict]:
    """Per pair: ξ after this truncation's ε, and the θ ± ε to unroll its two states with."""
    # One draw from the worker's stream seeds all pairs, so a resumed worker draws the same ε.
    keys = jax.random.split(jax.random.PRNGKey(int(rng.integers(0, 2**31 - 1))), len(self.pairs))
    plan = []
    for pair, key in zip(self.pairs, keys):
      eps = estimators.sample_perturbation(key, theta, self.sigma)
      xi = estimators.accumulate(estimators.zeros_like(theta) if pair["xi"] is None else pair["xi"], eps)
      theta_plus, theta_minus = estimators.antithetic(theta, eps)
      plan.append({"pair": pair, "xi": xi, "plus": theta_plus, "minus": theta_minus})
    return plan

  def _finish(self, plan: list[dict], outcomes: list[dict]) -> Truncation:
    """The PES estimate from each pair's ± unrolls ({sign: (loss, metrics, state, backprop or None)})."""
    new_pairs, xis, plus_losses, minus_losses, all_metrics, backprop = [], [], [], [], [], []
    for p, outcome in zip(plan, outcomes):
      new_pair = {"xi": p["xi"]}
      for sign, losses in (("plus", plus_losses), ("minus", minus_losses)):
        loss, metrics, state, g = outcome[sign]
        if g is not None:
          backprop.append(jax.tree_util.tree_map(np.asarray, g))
        new_pair[sign] = jax.tree_util.tree_map(np.asarray, state)
        losses.append(np.float32(loss))
        all_metrics.append(metrics)
      new_pairs.append(new_pair)
      xis.append(p["xi"])
    grads = estimators.pes_gradient(xis, plus_losses, minus_losses, self.sigma)
    finite = all(_finite(p["plus"]) and _finite(p["minus"]) for p in new_pairs)
    if finite:
      self.pairs = new_pairs
    loss = float(np.mean(plus_losses + minus_losses))
    metrics = {name: float(np.mean([m[name] for m in all_metrics])) for name in all_metrics[0]}
    # Averaging the ± backprops cancels the O(σ) shift of evaluating at θ ± ε instead of θ.
    grads_tbptt = (
      jax.tree_util.tree_map(lambda *g: np.mean(np.stack(g), axis=0), *backprop) if backprop else None
    )
    return Truncation(loss, metrics, grads, grads_tbptt, finite)

  def truncation(self, fns, theta, batches: dict, num_classes: int, rng: np.random.Generator) -> Truncation:
    """Every pair unrolled with θ ± ε; the loss and metrics are their means over the ± unrolls."""
    theta = jax.tree_util.tree_map(np.asarray, theta)
    plan = self._plan(theta, rng)
    outcomes = [
      {sign: self._unroll(fns, p[sign], p["pair"][sign], batches, num_classes) for sign in ("plus", "minus")}
      for p in plan
    ]
    return self._finish(plan, outcomes)

  @classmethod
  def truncation_many(cls, ests, fns, theta, batches_list, num_classes: int, rngs) -> list[Truncation]:
    """`truncation` of N estimators (tasks of one shape): every ± unroll of every pair of every task
    in one vmapped call, each with its own θ ± ε; the same results as N calls."""
    theta = jax.tree_util.tree_map(np.asarray, theta)
    plans = [e._plan(theta, rng) for e, rng in zip(ests, rngs)]
    calls = [
      (i, j, sign) for i, plan in enumerate(plans) for j in range(len(plan)) for sign in ("plus", "minus")
    ]
    thetas = stack_trees([plans[i][j][sign] for i, j, sign in calls])
    states = stack_trees([plans[i][j]["pair"][sign] for i, j, sign in calls])
    batches = stack_trees([batches_list[i] for i, _, _ in calls])
    outs = cls._unroll_many(fns, thetas, states, batches, num_classes)
    outcomes = [[{} for _ in plan] for plan in plans]
    for m, (i, j, sign) in enumerate(calls):
      outcomes[i][j][sign] = tuple(None if o is None else tree_slice(o, m) for o in outs)
    return [e._finish(plan, o) for e, plan, o in zip(ests, plans, outcomes)]

  @staticmethod
  def _unroll_many(fns, thetas, states, batches, num_classes: int) -> tuple:
    """(losses, metrics, states, backprops or None), each with a leading axis over the unrolls."""
    loss, metrics, new_states = fns.unroll_loss_many_thetas(thetas, states, batches, num_classes=num_classes)
    return loss, metrics, new_states, None

  def reset(self) -> None:
    self.pairs = None

  def get_state(self, carried: bool = True) -> dict:
    if not carried or self.pairs is None:
      return {"state": None, "pes": None}
    return {
      "state": None,
      "pes": [
        {
          "plus": checkpoint.flatten(p["plus"]),
          "minus": checkpoint.flatten(p["minus"]),
          "xi": None if p["xi"] is None else checkpoint.flatten(p["xi"]),
        }
        for p in self.pairs
      ],
    }

  def set_state(self, saved: dict, state_template, who: str) -> None:
    if state_template is None:
      self.pairs = None
      return
    if saved.get("pes") is None:
      raise checkpoint.CheckpointError(
        f"{who}'s checkpoint has no PES state: it was written with another "
        "unroll.estimator; resume with that one or use a new --workdir"
      )
    if len(saved["pes"]) != self.num_pairs:
      raise checkpoint.CheckpointError(
        f"{who}'s checkpoint has {len(saved['pes'])} PES pairs, unroll.pes_pairs = {self.num_pairs}"
      )
    theta_template = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), self.rule_cfg))
    what = f"{who}'s PES"
    self.pairs = [
      {
        "plus": checkpoint.unflatten(state_template, p["plus"], what=f"{what} state (θ+ε)"),
        "minus": checkpoint.unflatten(state_template, p["minus"], what=f"{what} state (θ−ε)"),
        "xi": None if p["xi"] is None else checkpoint.unflatten(theta_template, p["xi"], what=f"{what} ξ"),
      }
      for p in saved["pes"]
    ]


class Hybrid(PES):
  """PES that also backpropagates through its ± unrolls (the same carried state as PES)."""

  name = "hybrid"
  combine = INVERSE_VARIANCE

  def _unroll(self, fns, theta, state, batches: dict, num_classes: int):
    loss, metrics, state, g = fns.meta_gradient(theta, state, batches, num_classes=num_classes)
    return loss, metrics, state, g

  @staticmethod
  def _unroll_many(fns, thetas, states, batches, num_classes: int) -> tuple:
    return fns.meta_gradient_many_thetas(thetas, states, batches, num_classes=num_classes)


ESTIMATOR_CLASSES = {cls.name: cls for cls in (TruncatedBackprop, PES, Hybrid)}


def make_estimator(cfg) -> GradientEstimator:
  """The estimator `cfg.unroll.estimator` names, configured from `cfg` (no state carried yet)."""
  name = str(cfg.unroll.estimator)
  if name not in ESTIMATOR_CLASSES:
    raise ValueError(f"unroll.estimator must be one of {tuple(ESTIMATOR_CLASSES)}, got {name!r}")
  return ESTIMATOR_CLASSES[name].from_config(cfg)
