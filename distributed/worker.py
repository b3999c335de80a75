"""A meta-training worker: keeps one task and base model, returns truncated meta-gradients.

Per task it samples a total horizon (inner steps, log-uniform in
[unroll.horizon_min, unroll.horizon_max]); then each call samples an unroll length
k from `unroll.lengths`, applies the rule k times with the θ it was given, evaluates
the meta-objective on each new state and returns the meta-gradient. The final state
starts the next call's unroll; when the horizon is reached (or the state turned
non-finite) a new task is drawn. Results are NumPy, tagged with the θ version used.

With `unroll.estimator = "pes"` the meta-gradient is the PES estimate instead
(learned_update/estimators.py): per antithetic pair the worker carries two base-model
states across the task's truncations, unrolled with θ + ε and θ − ε (forward only), and
the perturbations ξ accumulated since the task started; a new task starts them afresh.

With `unroll.stagger_first_task` (tbptt only) a worker's first task starts at a random point of
its horizon: the rule (with the θ of that call, forward only) first advances the fresh base
model by a uniform multiple of the shortest truncation length below the horizon. Without it,
every worker of a new run evaluates the first truncations of a task at the same time, so the
first ~horizon/k updates see only early-task states; with it the inner-step phases are spread
from the first update on, as they are in a long run.
With "hybrid" it backpropagates through those same unrolls as well and returns their mean
truncated-backprop gradient as "grads_tbptt" beside the PES estimate, for the learner to
weigh (learned_update/estimators.py).

The class is plain Python: `distributed.pools.RayPool` wraps it in a Ray actor, and the
in-process mode (workers.mode = "inprocess", or num_workers = 0) calls it directly. An
exception in a call is the pool's to handle: it replaces the worker (Ray) or `reset()`s it
onto a fresh task.
`workers.fault_injection` (tests only) makes workers raise on purpose to exercise that path.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.distributed import checkpoint
from meta_unsup_rules.learned_update import estimators, export, rule, unroll
from meta_unsup_rules.tasks import meta_train
from meta_unsup_rules.util import jax_setup

FAULT_MODES = ("raise_once", "raise_always")


class InjectedFault(RuntimeError):
  """What `workers.fault_injection` raises: tests of the pools' fault handling need a real error."""


def parse_fault_injection(spec: str) -> tuple[str, int | None]:
  """`workers.fault_injection` → (mode, worker id or None = every worker); "" → ("", None).

  "raise_once[:worker=N]": the worker's first call in this process raises (a replacement
  or reset worker does not); "raise_always[:worker=N]": every call raises.
  """
  spec = str(spec or "").strip()
  if not spec:
    return "", None
  mode, _, target = spec.partition(":")
  worker = None
  if target:
    key, _, value = target.partition("=")
    if key.strip() != "worker" or not value.strip().isdigit():
      raise ValueError(f"workers.fault_injection: expected MODE or MODE:worker=N, got {spec!r}")
    worker = int(value)
  if mode not in FAULT_MODES:
    raise ValueError(f"workers.fault_injection: mode must be one of {FAULT_MODES}, got {spec!r}")
  return mode, worker


def sample_horizon(rng: np.random.Generator, unroll_cfg) -> int:
  lo, hi = np.log(unroll_cfg.horizon_min), np.log(unroll_cfg.horizon_max)
  return int(round(np.exp(rng.uniform(lo, hi))))


class TaskWorker:
  """Holds (task, base-model state, step, horizon, rng) between calls."""

  def __init__(self, cfg, seed: int, worker_id: int = 0, incarnation: int = 0):
    self.cfg = cfg
    self.worker_id = worker_id
    # How often this worker id was replaced or reset after an error (fault injection only).
    self.incarnation = incarnation
    self._calls = 0
    self._fault_spec = str(cfg.workers.fault_injection or "")
    self._fault = parse_fault_injection(self._fault_spec)
    self.rng = np.random.default_rng([int(seed), int(worker_id), 0x5EED])
    self.fns = unroll.make_unroll_fns(cfg)
    self.task = None
    self.state = None
    self.steps_done = 0
    self.horizon = 0
    self.tasks_started = 0
    self.estimator = str(cfg.unroll.estimator)
    # PES, one entry per antithetic pair: {"plus": state, "minus": state, "xi": θ-shaped}.
    self.pes = None

  def new_task(self) -> None:
    """Draws the next task, its base model's initialisation and its horizon from the worker's RNG."""
    cfg = self.cfg
    self.task = meta_train.sample_meta_train_task(self.rng, cfg.task, data_dir=cfg.data_dir or None)
    key = jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1)))
    self.state = jax.tree_util.tree_map(
      np.asarray,
      base_models.init(
        key, self.task.input_dim, self.task.layer_widths, cfg.base_model, permutation=self.task.permutation
      ),
    )
    self.steps_done = 0
    self.horizon = sample_horizon(self.rng, cfg.unroll)
    self.tasks_started += 1
    if self.estimator in ("pes", "hybrid"):
      # Every pair starts from the task's initial state; ξ is filled in with θ's structure on
      # the first truncation (θ is not known here).
      self.pes = [{"plus": self.state, "minus": self.state, "xi": None} for _ in range(cfg.unroll.pes_pairs)]
      self.state = None

  def _advance_to_random_phase(self, theta) -> None:
    """Starts the first task at a random inner step, reached with the unperturbed θ.

    PES pairs then start together from that state with ξ = 0: no perturbation has shaped it,
    so the estimate stays unbiased for the rest of the task (the steps before are a fixed start).
    """
    chunk = int(min(self.cfg.unroll.lengths))
    chunks = int(self.rng.integers(0, max(1, self.horizon // chunk)))
    theta = jax.tree_util.tree_map(np.asarray, theta)
    state = self.state if self.pes is None else self.pes[0]["plus"]
    for _ in range(chunks):
      unlabelled = self.task.unlabelled_batches(self.rng, chunk, self.cfg.unroll.inner_batch_size)
      state = self.fns.apply_rule(theta, state, unlabelled)
    state = jax.tree_util.tree_map(np.asarray, state)
    if not _finite(state):
      return
    self.steps_done = chunks * chunk
    if self.pes is None:
      self.state = state
    else:
      self.pes = [{"plus": state, "minus": state, "xi": None} for _ in self.pes]

  def truncation_batches(self, k: int) -> dict:
    """The next truncation's inputs (k unlabelled batches, k × num_evaluations labelled ones)."""
    n = self.cfg.meta_objective.num_evaluations
    unlabelled = self.task.unlabelled_batches(self.rng, k, self.cfg.unroll.inner_batch_size)
    x, targets, labels = self.task.labelled_batches(self.rng, k * n)
    return {
      "unlabelled": unlabelled,
      "x": x.reshape((k, n) + x.shape[1:]),
      "targets": targets.reshape((k, n) + targets.shape[1:]),
      "labels": labels.reshape((k, n) + labels.shape[1:]),
    }

  def compute_gradient(self, theta, theta_version: int) -> dict:
    """One truncated unroll with `theta`; returns NumPy gradient, loss and metrics."""
    start = time.perf_counter()
    self._maybe_inject_fault()
    if self.task is None or self.steps_done >= self.horizon:
      self.new_task()
      if self.tasks_started == 1 and self.cfg.unroll.stagger_first_task:
        self._advance_to_random_phase(theta)
    lengths = tuple(self.cfg.unroll.lengths)
    k = int(lengths[int(self.rng.integers(0, len(lengths)))])
    batches = self.truncation_batches(k)
    extra = {}
    if self.estimator in ("pes", "hybrid"):
      loss, metrics, grads, grads_tbptt = self._pes_truncation(theta, batches, k)
      if grads_tbptt is not None:
        extra["grads_tbptt"] = grads_tbptt
    else:
      loss, metrics, new_state, grads = self.fns.meta_gradient(
        theta, self.state, batches, num_classes=self.task.num_classes
      )
      new_state = jax.tree_util.tree_map(np.asarray, new_state)
      self.steps_done += k
      if _finite(new_state):
        self.state = new_state
      else:
        self.steps_done = self.horizon  # the base model diverged: draw a new task next call
    return {
      "grads": jax.tree_util.tree_map(np.asarray, grads),
      "loss": float(loss),
      "metrics": {name: float(v) for name, v in metrics.items()},
      "theta_version": int(theta_version),
      "dataset": self.task.dataset,
      "inner_steps": k,
      "task_step": self.steps_done,
      "worker_id": self.worker_id,
      "seconds": time.perf_counter() - start,
      "backend": jax.default_backend(),
      **extra,
    }

  def _pes_truncation(self, theta, batches: dict, k: int):
    """One truncation of every antithetic pair: (mean ± loss, mean metrics, PES estimate, and for
    "hybrid" the mean truncated-backprop gradient of the ± unrolls, else None)."""
    ucfg = self.cfg.unroll
    theta = jax.tree_util.tree_map(np.asarray, theta)
    # One draw from the worker's stream seeds all pairs, so a resumed worker draws the same ε.
    keys = jax.random.split(jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1))), len(self.pes))
    new_pairs, xis, plus_losses, minus_losses, all_metrics, backprop = [], [], [], [], [], []
    for pair, key in zip(self.pes, keys):
      eps = estimators.sample_perturbation(key, theta, ucfg.pes_sigma)
      xi = estimators.accumulate(estimators.zeros_like(theta) if pair["xi"] is None else pair["xi"], eps)
      theta_plus, theta_minus = estimators.antithetic(theta, eps)
      new_pair = {"xi": xi}
      for sign, theta_s, losses in (("plus", theta_plus, plus_losses), ("minus", theta_minus, minus_losses)):
        if self.estimator == "hybrid":
          loss, metrics, state, g = self.fns.meta_gradient(
            theta_s, pair[sign], batches, num_classes=self.task.num_classes
          )
          backprop.append(jax.tree_util.tree_map(np.asarray, g))
        else:
          loss, metrics, state = self.fns.unroll_loss(
            theta_s, pair[sign], batches, num_classes=self.task.num_classes
          )
        new_pair[sign] = jax.tree_util.tree_map(np.asarray, state)
        losses.append(np.float32(loss))
        all_metrics.append(metrics)
      new_pairs.append(new_pair)
      xis.append(xi)
    grads = estimators.pes_gradient(xis, plus_losses, minus_losses, ucfg.pes_sigma)
    self.steps_done += k
    if all(_finite(p["plus"]) and _finite(p["minus"]) for p in new_pairs):
      self.pes = new_pairs
    else:
      self.steps_done = self.horizon  # a base model diverged: draw a new task next call
    loss = float(np.mean(plus_losses + minus_losses))
    metrics = {name: float(np.mean([m[name] for m in all_metrics])) for name in all_metrics[0]}
    # Averaging the ± backprops cancels the O(σ) shift of evaluating at θ ± ε instead of θ.
    grads_tbptt = (
      jax.tree_util.tree_map(lambda *g: np.mean(np.stack(g), axis=0), *backprop) if backprop else None
    )
    return loss, metrics, grads, grads_tbptt

  def _maybe_inject_fault(self) -> None:
    # Before any random draw: a run without fault injection draws exactly as before.
    mode, target = self._fault
    self._calls += 1
    if not mode or (target is not None and target != self.worker_id):
      return
    if mode == "raise_always" or (self.incarnation == 0 and self._calls == 1):
      # One message for every worker: identical errors are how the pools tell a
      # configuration error (stop the run) from bad luck (replace the worker).
      raise InjectedFault(f"injected fault (workers.fault_injection={self._fault_spec!r})")

  def reset(self) -> None:
    """After an error: drop the task (its state may be half-updated); the next call draws a new one.

    The random stream continues, so an in-process run stays deterministic.
    """
    self.task = None
    self.state = None
    self.steps_done = 0
    self.horizon = 0
    self.pes = None
    self.incarnation += 1

  # Exact resume of in-process runs: the whole worker state goes into the checkpoint, as
  # plain values and arrays (the task as its description, the base model's leaves by path).
  def get_state(self, tasks: bool = True) -> dict:
    """With `tasks=False` only the RNG is kept: restored, the worker starts a new task at a
    random phase (as a first task is staggered), drawn from where its RNG stream had got to."""
    if not tasks:
      return {
        "rng": self.rng.bit_generator.state,
        "task": None,
        "state": None,
        "steps_done": 0,
        "horizon": 0,
        "tasks_started": 0,
        **({} if self.estimator == "tbptt" else {"pes": None}),
      }
    return {
      "rng": self.rng.bit_generator.state,
      "task": None if self.task is None else self.task.to_dict(),
      "state": None if self.state is None else checkpoint.flatten(self.state),
      "steps_done": int(self.steps_done),
      "horizon": int(self.horizon),
      "tasks_started": int(self.tasks_started),
      **({} if self.estimator == "tbptt" else {"pes": self._pes_get_state()}),
    }

  def _pes_get_state(self):
    if self.pes is None:
      return None
    return [
      {
        "plus": checkpoint.flatten(p["plus"]),
        "minus": checkpoint.flatten(p["minus"]),
        "xi": None if p["xi"] is None else checkpoint.flatten(p["xi"]),
      }
      for p in self.pes
    ]

  def set_state(self, saved: dict) -> None:
    """Restores a `get_state`: the task's images come from its (re-loaded) source, the
    base-model structure from `base_models.init`, so nothing is rebuilt from the file."""
    task, state, pes = None, None, None
    if saved["task"] is not None:
      desc = saved["task"]
      source = meta_train.meta_train_source(
        desc["dataset"], self.cfg.task, data_dir=self.cfg.data_dir or None
      )
      try:
        task = meta_train.MetaTrainTask.from_dict(desc, source)
      except ValueError as e:
        raise checkpoint.CheckpointError(f"worker {self.worker_id}'s task: {e}") from e
      template = jax.eval_shape(
        lambda: base_models.init(
          jax.random.PRNGKey(0),
          task.input_dim,
          task.layer_widths,
          self.cfg.base_model,
          permutation=task.permutation,
        )
      )
      if self.estimator in ("pes", "hybrid"):
        pes = self._pes_from_saved(saved, template)
      elif saved["state"] is None:
        raise checkpoint.CheckpointError(
          f"worker {self.worker_id}'s checkpoint has no base-model state: it was written with "
          "unroll.estimator = 'pes' or 'hybrid'; resume with that one or use a new --workdir"
        )
      else:
        state = checkpoint.unflatten(
          template, saved["state"], what=f"worker {self.worker_id}'s base-model state"
        )
    self.rng.bit_generator.state = saved["rng"]
    self.task, self.state, self.pes = task, state, pes
    self.steps_done, self.horizon = int(saved["steps_done"]), int(saved["horizon"])
    self.tasks_started = int(saved["tasks_started"])

  def _pes_from_saved(self, saved: dict, state_template):
    if saved.get("pes") is None:
      raise checkpoint.CheckpointError(
        f"worker {self.worker_id}'s checkpoint has no PES state: it was written with another "
        "unroll.estimator; resume with that one or use a new --workdir"
      )
    if len(saved["pes"]) != self.cfg.unroll.pes_pairs:
      raise checkpoint.CheckpointError(
        f"worker {self.worker_id}'s checkpoint has {len(saved['pes'])} PES pairs, "
        f"unroll.pes_pairs = {self.cfg.unroll.pes_pairs}"
      )
    theta_template = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), self.cfg.rule))
    what = f"worker {self.worker_id}'s PES"
    return [
      {
        "plus": checkpoint.unflatten(state_template, p["plus"], what=f"{what} state (θ+ε)"),
        "minus": checkpoint.unflatten(state_template, p["minus"], what=f"{what} state (θ−ε)"),
        "xi": None if p["xi"] is None else checkpoint.unflatten(theta_template, p["xi"], what=f"{what} ξ"),
      }
      for p in saved["pes"]
    ]


def _finite(tree) -> bool:
  return all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def make_worker(cfg_json: str, seed: int, worker_id: int, incarnation: int = 0) -> TaskWorker:
  """Builds a worker from a JSON config (what crosses process boundaries)."""
  jax_setup.configure_jax()
  return TaskWorker(export.config_from_json(cfg_json), seed, worker_id, incarnation)
