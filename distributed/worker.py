"""A meta-training worker: keeps one task and its estimator's state, returns a meta-gradient per call.

Per task it samples a total horizon (inner steps, log-uniform in
[unroll.horizon_min, unroll.horizon_max]); then each call samples an unroll length
k from `unroll.lengths`, draws that truncation's batches and hands them, with the θ it was
given, to its gradient estimator (distributed/gradient_estimators.py, chosen once from
`unroll.estimator`): truncated backprop carries the base-model state from one truncation to
the next, PES and hybrid carry antithetic pairs of states and their accumulated perturbations.
When the horizon is reached (or the carried state turned non-finite) a new task is drawn. A
call returns a `WorkerResult`: NumPy arrays and plain values, tagged with the θ version used.

With `unroll.stagger_first_task` a worker's first task starts at a random point of its
horizon: the rule (with the θ of that call, forward only) first advances the fresh base model
by a uniform multiple of the shortest truncation length below the horizon, and the estimator
starts from there (PES pairs together, with ξ = 0). Without it, every worker of a new run
evaluates the first truncations of a task at the same time, so the first ~horizon/k updates
see only early-task states; with it the inner-step phases are spread from the first update on,
as they are in a long run.

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
from meta_unsup_rules.distributed import checkpoint, gradient_estimators
from meta_unsup_rules.learned_update import export, unroll
from meta_unsup_rules.tasks import meta_train
from meta_unsup_rules.util import jax_setup, trees

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
  """Holds (task, step, horizon, rng) and the estimator that carries the task's state between calls."""

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
    self.estimator = gradient_estimators.make_estimator(cfg)
    self.task = None
    self.steps_done = 0
    self.horizon = 0
    self.tasks_started = 0

  def new_task(self) -> None:
    """Draws the next task, its base model's initialisation and its horizon from the worker's RNG."""
    cfg = self.cfg
    self.task = meta_train.sample_meta_train_task(self.rng, cfg.task, data_dir=cfg.data_dir or None)
    key = jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1)))
    self.estimator.start(
      jax.tree_util.tree_map(
        np.asarray,
        base_models.init(
          key, self.task.input_dim, self.task.layer_widths, cfg.base_model, permutation=self.task.permutation
        ),
      )
    )
    self.steps_done = 0
    self.horizon = sample_horizon(self.rng, cfg.unroll)
    self.tasks_started += 1

  def _advance_to_random_phase(self, theta) -> None:
    """Starts the first task at a random inner step, reached with the unperturbed θ.

    PES pairs then start together from that state with ξ = 0: no perturbation has shaped it,
    so the estimate stays unbiased for the rest of the task (the steps before are a fixed start).
    """
    chunk = int(min(self.cfg.unroll.lengths))
    chunks = int(self.rng.integers(0, max(1, self.horizon // chunk)))
    theta = jax.tree_util.tree_map(np.asarray, theta)
    state = self.estimator.reference_state()
    for _ in range(chunks):
      unlabelled = self.task.unlabelled_batches(self.rng, chunk, self.cfg.unroll.inner_batch_size)
      state = self.fns.apply_rule(theta, state, unlabelled)
    state = jax.tree_util.tree_map(np.asarray, state)
    if not trees.all_finite(state):
      return
    self.steps_done = chunks * chunk
    self.estimator.start(state)

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

  def compute_gradient(self, theta, theta_version: int) -> gradient_estimators.WorkerResult:
    """One truncation with `theta`: the estimator's NumPy gradient, loss and metrics."""
    start = time.perf_counter()
    self._maybe_inject_fault()
    if self.task is None or self.steps_done >= self.horizon:
      self.new_task()
      if self.tasks_started == 1 and self.cfg.unroll.stagger_first_task:
        self._advance_to_random_phase(theta)
    lengths = tuple(self.cfg.unroll.lengths)
    k = int(lengths[int(self.rng.integers(0, len(lengths)))])
    batches = self.truncation_batches(k)
    out = self.estimator.truncation(self.fns, theta, batches, self.task.num_classes, self.rng)
    self.steps_done += k
    if not out.finite:
      self.steps_done = self.horizon  # the base model diverged: draw a new task next call
    grads_tbptt = out.grads_tbptt
    return gradient_estimators.WorkerResult(
      grads=jax.tree_util.tree_map(np.asarray, out.grads),
      loss=float(out.loss),
      metrics={name: float(v) for name, v in out.metrics.items()},
      theta_version=int(theta_version),
      dataset=self.task.dataset,
      inner_steps=k,
      task_step=self.steps_done,
      worker_id=self.worker_id,
      seconds=time.perf_counter() - start,
      backend=jax.default_backend(),
      grads_tbptt=None if grads_tbptt is None else jax.tree_util.tree_map(np.asarray, grads_tbptt),
    )

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
    self.estimator.reset()
    self.steps_done = 0
    self.horizon = 0
    self.incarnation += 1

  # Exact resume of in-process runs: the whole worker state goes into the checkpoint, as
  # plain values and arrays (the task as its description, the base model's leaves by path).
  def get_state(self, tasks: bool = True) -> dict:
    """With `tasks=False` only the RNG is kept: restored, the worker starts a new task at a
    random phase (as a first task is staggered), drawn from where its RNG stream had got to.

    The estimator's fields: "state" (truncated backprop's base-model state, else None) and, for
    PES and hybrid only, "pes" (per pair "plus", "minus", "xi")."""
    if not tasks:
      carried = self.estimator.get_state(carried=False)
      return {
        "rng": self.rng.bit_generator.state,
        "task": None,
        "state": carried.pop("state"),
        "steps_done": 0,
        "horizon": 0,
        "tasks_started": 0,
        **carried,
      }
    carried = self.estimator.get_state()
    return {
      "rng": self.rng.bit_generator.state,
      "task": None if self.task is None else self.task.to_dict(),
      "state": carried.pop("state"),
      "steps_done": int(self.steps_done),
      "horizon": int(self.horizon),
      "tasks_started": int(self.tasks_started),
      **carried,
    }

  def set_state(self, saved: dict) -> None:
    """Restores a `get_state`: the task's images come from its (re-loaded) source, the
    base-model structure from `base_models.init`, so nothing is rebuilt from the file."""
    task, template = None, None
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
    self.estimator.set_state(saved, template, who=f"worker {self.worker_id}")
    self.rng.bit_generator.state = saved["rng"]
    self.task = task
    self.steps_done, self.horizon = int(saved["steps_done"]), int(saved["horizon"])
    self.tasks_started = int(saved["tasks_started"])


def make_worker(cfg_json: str, seed: int, worker_id: int, incarnation: int = 0) -> TaskWorker:
  """Builds a worker from a JSON config (what crosses process boundaries)."""
  jax_setup.configure_jax()
  return TaskWorker(export.config_from_json(cfg_json), seed, worker_id, incarnation)
