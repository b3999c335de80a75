"""The meta-training loop, as the algorithm reads: collect worker results for θ → the learner combines
a full batch, clips it and applies Adam → record the update (and write what is due).

`meta_train(cfg, workdir)` starts a run (from the untrained θ, `learner.init_theta` or another run's
checkpoint, `learner.branch_from`) or resumes the newest checkpoint in `workdir` with its stored
settings (distributed/run_config.py), and runs until `learner.num_updates` updates, a signal, or the
session's limits. What the run writes — metrics.jsonl and TensorBoard, validation and best/, θ
snapshots, checkpoints, theta/ — is distributed/run_outputs.py's; what its θs say about where they
came from is distributed/provenance.py's.
"""

from __future__ import annotations

import collections
import pathlib
import shutil
import sys
import time

import jax
import numpy as np

from meta_unsup_rules.distributed import (
  checkpoint,
  gradient_estimators,
  inprocess_pool,
  pools,
  provenance,
  run_config,
  run_files,
  run_outputs,
  validation,
)
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.learned_update import export, rule
from meta_unsup_rules.util import config_compat, signals, workdir_lock


def meta_train(
  cfg,
  workdir,
  progress: bool = True,
  max_seconds: float | None = None,
  stop_at_step: int | None = None,
  config_source: str | None = None,
  explicit_fields=(),
) -> dict:
  """Runs (or resumes) meta-training; returns the final summary dict.

  `max_seconds` and `stop_at_step` end the run early with a checkpoint, as SIGTERM does
  (the schedule still spans `learner.num_updates`). `config_source` (the config file's name)
  goes into the lineage of every θ the run exports. A resumed run keeps its stored settings
  (distributed/run_config.py: only run-control fields may change; `explicit_fields`, the paths
  given on the command line, tell a deliberate change of a field the stored config lacks).
  The summary's `stopped_by` names the signal that ended the run early ("SIGINT", "SIGTERM"),
  `already_finished` says that a finished run was re-run (nothing is written then). A new run that
  fails, or is stopped by a signal, before its first update removes the workdir it created;
  `stop_at_step=0` or `max_seconds` reached before it write the starting checkpoint.
  """
  workdir = pathlib.Path(workdir)
  existed = workdir.exists()
  created = not existed or not any(workdir.iterdir())  # a new run, in a new or an empty folder
  # One trainer per workdir: a second exits (LockHeld) before it reads or writes anything.
  lock = workdir_lock.WorkdirLock(workdir / run_files.TRAINER_LOCK, "a trainer").acquire()
  run = None
  try:
    run = _Run(cfg, workdir, config_source, explicit_fields)
    if run.already_finished:
      run.pool.close()
      print(
        f"{workdir}: the run is finished (update {run.learner.step} of learner.num_updates="
        f"{run.cfg.learner.num_updates}); nothing to do. Raise --config.learner.num_updates to go on.",
        file=sys.stderr,
      )
      return {**run.summary(None), "already_finished": True}
    run.open_outputs(progress)
    stopped_by = None
    try:
      with signals.StopFlag() as flag:
        while run.goes_on(flag, max_seconds, stop_at_step):
          run.collect()  # worker results for the current θ into the learner's batch
          if run.learner.ready:
            stats = run.learner.apply()  # combine the batch, clip, Adam
            if not stats["skipped"]:
              run.record(stats)  # metrics, validation, best θ, checkpoint, snapshot
        stopped_by = flag.signal_name
    except KeyboardInterrupt:
      print("\naborted: no final checkpoint (the last one is kept)", file=sys.stderr)
      raise
    except pools.WorkerConfigError:
      if run.made_updates:
        run.save_checkpoint()  # the updates made before every worker failed the same way are kept
      raise
    finally:
      run.close_outputs()
    if not run.made_updates and created and stopped_by is not None:  # a signal before the first update
      raise _NothingDone(stopped_by)
    return {**run.finish(), "stopped_by": stopped_by}
  except BaseException as e:
    if created and (run is None or not run.made_updates):
      lock.release()
      _remove_what_it_made(workdir, keep_folder=existed)  # a run that never updated leaves nothing
    if isinstance(e, _NothingDone):
      return {"step": 0, "stopped_by": e.stopped_by, "removed_workdir": str(workdir)}
    raise
  finally:
    lock.release()


class _NothingDone(Exception):
  """A new run stopped before its first update: its workdir goes."""

  def __init__(self, stopped_by):
    super().__init__(stopped_by)
    self.stopped_by = stopped_by


class _Run:
  """One meta-training run between updates: the learner, the worker pool, the window of
  gradients since the last update, and its outputs (`outputs`, distributed/run_outputs.py).
  `meta_train` drives it."""

  def __init__(self, cfg, workdir: pathlib.Path, config_source: str | None, explicit_fields=()):
    """Resumes from the newest checkpoint in `workdir`, or starts (from `learner.init_theta`)."""
    self.workdir = workdir
    workdir.mkdir(parents=True, exist_ok=True)
    saved = checkpoint.load_latest(workdir)
    self.history = []
    if saved is not None and saved.get("config_json"):  # the stored settings, given run control (or drift)
      cfg, changes = run_config.resolve(saved["config_json"], cfg, explicit_fields, int(saved["step"]))
      self.history = list(saved.get("config_history") or []) + changes
      for c in changes:
        print(
          f"resuming at update {c['update']} with {c['field']} {c['from']!r} → {c['to']!r}", file=sys.stderr
        )
    self.cfg = cfg
    theta0 = rule.init_theta(jax.random.PRNGKey(cfg.seed), cfg.rule)
    self.signature = checkpoint.theta_signature(theta0)
    if saved is not None:
      saved = checkpoint.load_latest(workdir, self.signature)  # refuses another θ architecture
    if saved is None and cfg.learner.init_theta:
      theta0 = provenance.initial_theta_from_export(cfg.learner.init_theta, theta0, cfg.rule)
    combine = gradient_estimators.make_estimator(cfg).combine  # as the workers' estimator wants
    self.learner = learner_lib.Learner(cfg.learner, theta0, combine=combine)
    self.pool = pools.make_pool(cfg)
    self.resumed_from, self.elapsed_before, self.cpu_before = None, 0.0, 0.0
    if saved is not None:
      self.origin = provenance.run_origin(cfg, workdir, config_source, saved)
      self._restore(saved)
    elif config_compat.read(cfg.learner, "learner.branch_from"):
      self.origin = self._branch(config_source)
    else:
      self.origin = provenance.run_origin(cfg, workdir, config_source, None)
    self.outputs = run_outputs.RunOutputs(cfg, workdir, self.origin, _resumed_best(saved, workdir))
    self.start_step = self.learner.step
    self.already_finished = saved is not None and self.learner.step >= int(cfg.learner.num_updates)
    if not (workdir / run_files.CONFIG).is_file():  # the run's first session: a re-run never rewrites it
      export.write_config(workdir / run_files.CONFIG, cfg)
    if saved is None:
      _say_what_is_off(cfg)
    self.t_start = time.monotonic()
    self.cpu_start = time.process_time()
    self.total_grads = 0
    self.last_loss = float("nan")
    self._new_window(time.monotonic())

  def _restore(self, saved) -> None:
    try:  # structures come from this code; a leaf of another name or shape is refused
      self.learner.set_state(saved["learner"])
      if saved.get("pool") is not None:
        self.pool.set_state(saved["pool"])
      pools.set_counters(self.pool, saved.get("pool_counters") or {})
    except (checkpoint.CheckpointError, KeyError, TypeError, ValueError) as e:
      self.pool.close()
      raise checkpoint.CheckpointError(
        f"cannot resume from {saved['path']}: {type(e).__name__}: {e}. Nothing was "
        "overwritten; use a new --workdir or the code and config that wrote it."
      ) from e
    self.resumed_from = int(saved["step"])
    self.elapsed_before = float(saved.get("elapsed_sec", 0.0))
    self.cpu_before = float(saved.get("cpu_sec", 0.0))

  def _branch(self, config_source: str | None) -> dict:
    """A new run from another run's checkpoint (`learner.branch_from`, `branch_update`): θ, step,
    counters, Adam's state if its structure fits, and the in-process workers' random streams
    (the parent's tasks are not continued). Returns the run's origin."""
    lcfg = self.cfg.learner
    parent_dir = pathlib.Path(lcfg.branch_from)
    if parent_dir.resolve() == self.workdir.resolve():
      raise checkpoint.CheckpointError(f"learner.branch_from={parent_dir} is this run's own workdir")
    try:
      parent = checkpoint.load_step(parent_dir, int(lcfg.branch_update), self.signature)
      optimizer = self.learner.branch_from(parent["learner"])
      if parent.get("pool") is not None and isinstance(self.pool, inprocess_pool.InProcessPool):
        self.pool.set_state(_streams_only(parent["pool"]))
    except (checkpoint.CheckpointError, KeyError, TypeError, ValueError) as e:
      self.pool.close()
      raise checkpoint.CheckpointError(f"cannot branch from {parent_dir}: {type(e).__name__}: {e}") from e
    print(
      f"branching from {parent['path']} (update {self.learner.step}): Adam state {optimizer}"
      + (" (another optimiser structure: its moments start afresh)" if optimizer == "fresh" else ""),
      file=sys.stderr,
    )
    return provenance.branch_origin(self.cfg, self.workdir, config_source, parent, optimizer)

  def _new_window(self, now: float) -> None:
    """Forgets the gradients of the last update: rates and means are per update."""
    self.window = {"grads": 0, "inner_steps": 0, "t": now}
    self.per_dataset = collections.defaultdict(list)
    self.losses, self.accuracies = [], []

  def _elapsed(self, now: float) -> float:
    """Seconds of meta-training over every resume."""
    return self.elapsed_before + (now - self.t_start)

  def _cpu(self) -> float:
    """CPU seconds of the trainer's process (all its threads) over every resume of this run: its
    core-hours, whatever else shares the machine (inline validation included, async not)."""
    return self.cpu_before + (time.process_time() - self.cpu_start)

  def open_outputs(self, progress: bool) -> None:
    self.t_start = time.monotonic()
    self.cpu_start = time.process_time()
    self._new_window(time.monotonic())
    self.outputs.open(self.learner.step, progress)

  def close_outputs(self) -> None:
    self.outputs.close()
    self.pool.close()

  def goes_on(self, flag: signals.StopFlag, max_seconds: float | None, stop_at_step: int | None) -> bool:
    if self.learner.step >= self.cfg.learner.num_updates or flag.stop:
      return False
    if max_seconds is not None and time.monotonic() - self.t_start > max_seconds:
      return False
    return stop_at_step is None or self.learner.step < stop_at_step

  def collect(self) -> None:
    """One round of worker results for the current θ into the learner's batch."""
    for result in self.pool.results(self.learner.theta, self.learner.step):
      self.window["grads"] += 1
      self.total_grads += 1
      self.window["inner_steps"] += result.inner_steps
      if self.learner.accept(result):
        self.losses.append(result.loss)
        self.accuracies.append(result.metrics["accuracy"])
        self.per_dataset[result.dataset].append(result.loss)

  def record(self, stats: dict) -> None:
    """After an applied update: its record and the outputs due (run_outputs), a checkpoint when due."""
    step, theta = self.learner.step, self.learner.theta
    now = self.outputs.update(self._record(stats, time.monotonic()), theta, step, self._summary_now)
    self._new_window(now)
    if step % self.cfg.learner.checkpoint_every == 0:
      self.save_checkpoint()
    self.outputs.after_checkpoint(theta, step, self._summary_now, now)

  def _record(self, stats: dict, now: float) -> dict:
    """The update's line of metrics.jsonl."""
    learner, pool, window = self.learner, self.pool, self.window
    dt = max(now - window["t"], 1e-9)
    self.last_loss = float(np.mean(self.losses))
    return {
      "step": learner.step,
      "meta_loss": self.last_loss,
      "meta_loss_per_dataset": {k: float(np.mean(v)) for k, v in self.per_dataset.items()},
      "accuracy": float(np.mean(self.accuracies)),
      "grad_norm": stats["grad_norm"],
      "theta_norm": stats["theta_norm"],
      "lr": stats["lr"],
      "staleness": stats["staleness"],
      "skipped_updates": learner.counters["skipped_updates"],
      "stale_dropped": learner.counters["stale"],
      "nonfinite_dropped": learner.counters["nonfinite"],
      "worker_restarts": pool.restarts,
      "worker_errors": pool.worker_errors,
      "meta_grads_per_sec": window["grads"] / dt,
      "inner_steps_per_sec": window["inner_steps"] / dt,
      "meta_grads_total": provenance.meta_grads(learner.counters),
      "elapsed_sec": self._elapsed(now),
      "cpu_sec": self._cpu(),
      **{k: stats[k] for k in ("hybrid_weight_pes", "lr_mixing") if k in stats},
    }

  def _summary_now(self, now: float) -> dict:
    """`training_summary` of the current step (for a θ export between checkpoints)."""
    state = {"step": self.learner.step, "learner": {"counters": self.learner.counters}}
    return provenance.training_summary(self.workdir, {**state, "elapsed_sec": self._elapsed(now)})

  def save_checkpoint(self) -> pathlib.Path:
    payload = {
      "step": self.learner.step,
      "learner": self.learner.get_state(),
      "pool": self.pool.get_state(tasks=bool(self.cfg.learner.get("checkpoint_worker_tasks", True))),
      "pool_counters": pools.get_counters(self.pool),
      "theta_signature": self.signature,
      "config_json": self.cfg.to_json_best_effort(),
      "elapsed_sec": self._elapsed(time.monotonic()),
      "cpu_sec": self._cpu(),
      "validation_best": self.outputs.best,  # None until a validation ran
      "origin": self.origin,
      "config_history": self.history,  # run-control changes at resumes (distributed/run_config.py)
    }
    return self.outputs.checkpoint(payload)

  @property
  def made_updates(self) -> bool:
    return self.learner.step > self.start_step

  def finish(self) -> dict:
    """The final checkpoint and `theta/` export; returns the run's summary."""
    path = self.save_checkpoint()
    summary = self.summary(path)
    self.outputs.final_export(self.learner.theta, self.learner.step, summary)
    return summary

  def summary(self, path) -> dict:
    """The run's summary (the last stdout line of scripts.meta_train)."""
    return {
      "step": self.learner.step,
      "meta_loss": self.last_loss,
      "resumed_from": self.resumed_from,
      "meta_grads": self.total_grads,
      "hours": self._elapsed(time.monotonic()) / 3600.0,
      "meta_grads_per_sec": self.total_grads / max(time.monotonic() - self.t_start, 1e-9),
      "checkpoint": None if path is None else str(path),
      "validation_best": self.outputs.best_now(),
      **dict(self.learner.counters.items()),
      "worker_restarts": self.pool.restarts,
      "worker_errors": self.pool.worker_errors,
    }


def _remove_what_it_made(workdir: pathlib.Path, keep_folder: bool) -> None:
  if not keep_folder:
    shutil.rmtree(workdir, ignore_errors=True)
    return
  for path in workdir.iterdir():
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _say_what_is_off(cfg) -> None:
  """A new run says which outputs its settings leave out, so their absence is not a surprise."""
  if int(cfg.validation.every) == 0:
    print(
      "validation is off (validation.every=0): no best/ export and no validation records", file=sys.stderr
    )
  if int(cfg.learner.snapshot_every) == 0 and int(cfg.validation.every) == 0:
    print("θ snapshots are off (learner.snapshot_every=0): no snapshots/", file=sys.stderr)


def _streams_only(pool_state: dict) -> dict:
  """A pool state with each worker's random stream and nothing of its task: a branched run's
  workers start new tasks (staggered) from where the parent's streams had got to."""
  workers = []
  for w in pool_state["workers"]:
    kept = {k: None for k in w}
    kept.update(rng=w["rng"], task=None, state=None, steps_done=0, horizon=0, tasks_started=0)
    workers.append(kept)
  return {"workers": workers, "next": pool_state.get("next", 0)}


def _resumed_best(saved, workdir) -> dict | None:
  """The running validation best of a resumed run (None for a new one).

  The checkpoint's `validation_best`, or the `best/` export when that is better (written
  after the checkpoint, before an unclean stop): `best/` is never replaced by a worse θ.
  """
  if saved is None:
    return None
  best = saved.get("validation_best")
  on_disk = validation.best_on_disk(workdir)
  if on_disk is not None and (best is None or on_disk["accuracy"] > best["accuracy"]):
    best = on_disk
  return best
