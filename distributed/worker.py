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

With `workers.tasks_per_call` = N > 1 a worker advances N tasks in one compiled call (vmap over
tasks, learned_update/unroll.py `*_many`) and returns their N results: what fills an accelerator (on
this project's CPUs N = 1 is faster per meta-gradient, docs/performance.md). The N tasks form a
group of one shape: the first task is drawn exactly as a single worker draws its task (from the
worker's stream: data set, classes, architecture, permutation, base-model seed, horizon), and the
other N − 1 from streams of their own with that architecture and number of classes, each with its
own data set, classes, permutation, base-model seed and batches. The group shares the horizon and
the unroll length of each call, and ends together; the next group draws a new architecture and
horizon, so every task's architecture and horizon follow the configured distributions. A task whose
state diverges is replaced at once by a new task of the group's shape for the rest of the group's
horizon. The first group starts at a random phase (`stagger_first_task`), shared by its tasks; the
phases of different workers are independent.

The class is plain Python: `distributed.ray_pool.RayPool` wraps it in a Ray actor, and the
in-process mode (workers.mode = "inprocess", or num_workers = 0) calls it directly. An
exception in a call is the pool's to handle: it replaces the worker (Ray) or `reset()`s it
onto a fresh task.
A test can put a worker class of its own in the pools' place (`WORKER_CLASS_ENV`, e.g. one that
raises on purpose to exercise the fault handling: tests/faulty_worker.py).
"""

from __future__ import annotations

import importlib
import os
import time

import jax
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.distributed import checkpoint, gradient_estimators
from meta_unsup_rules.learned_update import export, unroll
from meta_unsup_rules.tasks import meta_train
from meta_unsup_rules.util import config_compat, jax_setup, trees

# "module:Class" of a TaskWorker subclass the pools build instead of TaskWorker (tests only: the
# variable is unset in every real run). Ray actors get it with their environment.
WORKER_CLASS_ENV = "META_UNSUP_WORKER_CLASS"


def worker_class():
  """TaskWorker, or the class WORKER_CLASS_ENV names."""
  spec = os.environ.get(WORKER_CLASS_ENV, "")
  if not spec:
    return TaskWorker
  module, _, name = spec.partition(":")
  return getattr(importlib.import_module(module), name)


def sample_horizon(rng: np.random.Generator, unroll_cfg) -> int:
  lo, hi = np.log(unroll_cfg.horizon_min), np.log(unroll_cfg.horizon_max)
  return int(round(np.exp(rng.uniform(lo, hi))))


class _ExtraTask:
  """Task 2..N of a worker's group: its own random stream, task and estimator state."""

  def __init__(self, cfg, seed: int, worker_id: int, slot: int):
    self.cfg = cfg
    self.rng = np.random.default_rng([int(seed), int(worker_id), int(slot), 0x5EED])
    self.estimator = gradient_estimators.make_estimator(cfg)
    self.task = None

  def new_task(self, layer_widths, num_classes: int) -> None:
    cfg = self.cfg
    self.task = meta_train.sample_meta_train_task(
      self.rng, cfg.task, data_dir=cfg.data_dir or None, layer_widths=layer_widths, num_classes=num_classes
    )
    key = jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1)))
    self.estimator.start(_initial_state(key, self.task, cfg))

  def truncation_batches(self, k: int) -> dict:
    return _truncation_batches(self.cfg, self.task, self.rng, k)


def _initial_state(key, task, cfg) -> dict:
  return jax.tree_util.tree_map(
    np.asarray,
    base_models.init(key, task.input_dim, task.layer_widths, cfg.base_model, permutation=task.permutation),
  )


def _truncation_batches(cfg, task, rng, k: int) -> dict:
  """A truncation's inputs (k unlabelled batches, k × num_evaluations labelled ones)."""
  n = cfg.meta_objective.num_evaluations
  unlabelled = task.unlabelled_batches(rng, k, cfg.unroll.inner_batch_size)
  x, targets, labels = task.labelled_batches(rng, k * n)
  return {
    "unlabelled": unlabelled,
    "x": x.reshape((k, n) + x.shape[1:]),
    "targets": targets.reshape((k, n) + targets.shape[1:]),
    "labels": labels.reshape((k, n) + labels.shape[1:]),
  }


def _task_template(cfg, task):
  return jax.eval_shape(
    lambda: base_models.init(
      jax.random.PRNGKey(0), task.input_dim, task.layer_widths, cfg.base_model, permutation=task.permutation
    )
  )


class TaskWorker:
  """Holds (task, step, horizon, rng) and the estimator that carries the task's state between calls;
  with `workers.tasks_per_call` > 1, the group's other tasks too (`extra`)."""

  def __init__(self, cfg, seed: int, worker_id: int = 0, incarnation: int = 0):
    self.cfg = cfg
    self.worker_id = worker_id
    # How often this worker id was replaced or reset after an error.
    self.incarnation = incarnation
    self.rng = np.random.default_rng([int(seed), int(worker_id), 0x5EED])
    self.fns = unroll.make_unroll_fns(cfg)
    self.estimator = gradient_estimators.make_estimator(cfg)
    self.task = None
    self.steps_done = 0
    self.horizon = 0
    self.tasks_started = 0
    n = int(config_compat.read(cfg.workers, "workers.tasks_per_call"))
    self.extra = [_ExtraTask(cfg, seed, worker_id, slot) for slot in range(1, n)]

  @property
  def tasks_per_call(self) -> int:
    return 1 + len(self.extra)

  def new_task(self) -> None:
    """Draws the next task, its base model's initialisation and its horizon from the worker's RNG."""
    cfg = self.cfg
    self.task = meta_train.sample_meta_train_task(self.rng, cfg.task, data_dir=cfg.data_dir or None)
    key = jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1)))
    self.estimator.start(_initial_state(key, self.task, cfg))
    self.steps_done = 0
    self.horizon = sample_horizon(self.rng, cfg.unroll)
    self.tasks_started += 1
    for extra in self.extra:  # the group's other tasks: the first one's shape, their own draws
      extra.new_task(self.task.layer_widths, self.task.num_classes)

  def _advance_to_random_phase(self, theta) -> None:
    """Starts the first task at a random inner step, reached with the unperturbed θ.

    PES pairs then start together from that state with ξ = 0: no perturbation has shaped it,
    so the estimate stays unbiased for the rest of the task (the steps before are a fixed start).
    """
    chunk = int(min(self.cfg.unroll.lengths))
    chunks = int(self.rng.integers(0, max(1, self.horizon // chunk)))
    theta = jax.tree_util.tree_map(np.asarray, theta)
    advanced = []
    for task, rng, estimator in self._group():
      state = estimator.reference_state()
      for _ in range(chunks):
        unlabelled = task.unlabelled_batches(rng, chunk, self.cfg.unroll.inner_batch_size)
        state = self.fns.apply_rule(theta, state, unlabelled)
      advanced.append(jax.tree_util.tree_map(np.asarray, state))
    if not all(trees.all_finite(state) for state in advanced):
      return
    self.steps_done = chunks * chunk
    for (_, _, estimator), state in zip(self._group(), advanced):
      estimator.start(state)

  def _group(self) -> list:
    """(task, random stream, estimator) of each task the worker advances per call."""
    return [(self.task, self.rng, self.estimator)] + [(e.task, e.rng, e.estimator) for e in self.extra]

  def truncation_batches(self, k: int) -> dict:
    """The next truncation's inputs (k unlabelled batches, k × num_evaluations labelled ones)."""
    return _truncation_batches(self.cfg, self.task, self.rng, k)

  def compute_gradients(self, theta, theta_version: int) -> list[gradient_estimators.WorkerResult]:
    """One truncation of each of the worker's tasks with `theta` (what the pools call)."""
    if not self.extra:
      return [self.compute_gradient(theta, theta_version)]
    start = time.perf_counter()
    if self.task is None or self.steps_done >= self.horizon:
      self.new_task()
      if self.tasks_started == 1 and self.cfg.unroll.stagger_first_task:
        self._advance_to_random_phase(theta)
    lengths = tuple(self.cfg.unroll.lengths)
    k = int(lengths[int(self.rng.integers(0, len(lengths)))])
    batches = [self.truncation_batches(k)] + [e.truncation_batches(k) for e in self.extra]
    group = self._group()
    outs = type(self.estimator).truncation_many(
      [est for _, _, est in group],
      self.fns,
      theta,
      batches,
      self.task.num_classes,
      [rng for _, rng, _ in group],
    )
    self.steps_done += k
    seconds = (time.perf_counter() - start) / len(group)
    results = [
      self._result(out, task, slot, theta_version, k, seconds)
      for slot, (out, (task, _, _)) in enumerate(zip(outs, group))
    ]
    for slot, out in enumerate(outs):
      if not out.finite:  # that task's base model diverged: a new task of the group's shape
        self._replace_in_group(slot)
    return results

  def _replace_in_group(self, slot: int) -> None:
    widths, num_classes = self.task.layer_widths, self.task.num_classes
    if slot == 0:
      cfg = self.cfg
      self.task = meta_train.sample_meta_train_task(
        self.rng, cfg.task, data_dir=cfg.data_dir or None, layer_widths=widths, num_classes=num_classes
      )
      self.estimator.start(
        _initial_state(jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1))), self.task, cfg)
      )
    else:
      self.extra[slot - 1].new_task(widths, num_classes)

  def _result(self, out, task, slot: int, theta_version: int, k: int, seconds: float):
    grads_tbptt = out.grads_tbptt
    return gradient_estimators.WorkerResult(
      grads=jax.tree_util.tree_map(np.asarray, out.grads),
      loss=float(out.loss),
      metrics={name: float(v) for name, v in out.metrics.items()},
      theta_version=int(theta_version),
      dataset=task.dataset,
      inner_steps=k,
      task_step=self.steps_done,
      worker_id=self.worker_id,
      seconds=seconds,
      backend=jax.default_backend(),
      grads_tbptt=None if grads_tbptt is None else jax.tree_util.tree_map(np.asarray, grads_tbptt),
      slot=slot,
    )

  def compute_gradient(self, theta, theta_version: int) -> gradient_estimators.WorkerResult:
    """One truncation with `theta`: the estimator's NumPy gradient, loss and metrics."""
    start = time.perf_counter()
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

  def reset(self) -> None:
    """After an error: drop the task (its state may be half-updated); the next call draws a new one.

    The random stream continues, so an in-process run stays deterministic.
    """
    self.task = None
    self.estimator.reset()
    for extra in self.extra:
      extra.task = None
      extra.estimator.reset()
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
        **self._extra_state(tasks=False),
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
      **self._extra_state(tasks=True),
    }

  def _extra_state(self, tasks: bool) -> dict:
    """The group's other tasks ("extra"; absent for one task per call, as in earlier checkpoints)."""
    if not self.extra:
      return {}
    out = []
    for e in self.extra:
      carried = e.estimator.get_state(carried=tasks)
      out.append(
        {
          "rng": e.rng.bit_generator.state,
          "task": e.task.to_dict() if tasks and e.task is not None else None,
          "state": carried.pop("state"),
          **carried,
        }
      )
    return {"extra": out}

  def set_state(self, saved: dict) -> None:
    """Restores a `get_state`: the task's images come from its (re-loaded) source, the
    base-model structure from `base_models.init`, so nothing is rebuilt from the file."""
    task = self._restored_task(saved["task"], f"worker {self.worker_id}'s task")
    template = None if task is None else _task_template(self.cfg, task)
    self.estimator.set_state(saved, template, who=f"worker {self.worker_id}")
    self.rng.bit_generator.state = saved["rng"]
    self.task = task
    self.steps_done, self.horizon = int(saved["steps_done"]), int(saved["horizon"])
    self.tasks_started = int(saved["tasks_started"])
    extra = saved.get("extra") or []
    if len(extra) != len(self.extra):
      raise checkpoint.CheckpointError(
        f"worker {self.worker_id} was checkpointed with {1 + len(extra)} tasks per call, "
        f"workers.tasks_per_call = {self.tasks_per_call}"
      )
    for slot, (e, s) in enumerate(zip(self.extra, extra), start=1):
      e.task = self._restored_task(s["task"], f"worker {self.worker_id}'s task {slot + 1}")
      e.estimator.set_state(
        s, None if e.task is None else _task_template(self.cfg, e.task), who=f"worker {self.worker_id}.{slot}"
      )
      e.rng.bit_generator.state = s["rng"]

  def _restored_task(self, desc, who: str):
    if desc is None:
      return None
    source = meta_train.meta_train_source(desc["dataset"], self.cfg.task, data_dir=self.cfg.data_dir or None)
    try:
      return meta_train.MetaTrainTask.from_dict(desc, source)
    except ValueError as e:
      raise checkpoint.CheckpointError(f"{who}: {e}") from e


def make_worker(cfg_json: str, seed: int, worker_id: int, incarnation: int = 0) -> TaskWorker:
  """Builds a worker from a JSON config (what crosses process boundaries)."""
  jax_setup.configure_jax()
  return worker_class()(export.config_from_json(cfg_json), seed, worker_id, incarnation)
