"""The meta-training loop: workers → learner → checkpoints, logs and a θ export.

`meta_train(cfg, workdir)` resumes from the newest checkpoint in `workdir` (refusing
one of another θ architecture), runs until `learner.num_updates` updates, writes a
checkpoint every `learner.checkpoint_every` updates and on SIGTERM / Ctrl-C, a θ-only
snapshot every `learner.snapshot_every` updates to `workdir/snapshots/step_<step>/`, appends
one JSON line per update to `workdir/metrics.jsonl`, and exports θ (θ-only, with its
config and a training summary) to `workdir/theta/`. With `validation.every` > 0, θ is
scored on the validation task every that many updates and at the last one
(distributed/validation.py; `val_accuracy`, `val_sem`, `val_step`, `val_sec` in that
update's record), and the best so far is exported to `workdir/best/` (its summary holds the
update, the validation accuracy ± s.e., meta-gradients and hours); the running best is kept
in the checkpoints, so it survives a resume.
"""

from __future__ import annotations

import collections
import json
import pathlib
import signal
import sys
import time

import jax
import numpy as np

from meta_unsup_rules.distributed import checkpoint, pools, validation
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.learned_update import export, lineage, rule
from meta_unsup_rules.util import files, tensorboard
from meta_unsup_rules.util import progress as progress_lib


class _StopFlag:
  """Turns SIGTERM into a graceful stop (final checkpoint) instead of a kill."""

  def __init__(self):
    self.stop = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.stop = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class Progress:
  """Updates done of `learner.num_updates`, rate, ETA and the meta-loss on stderr (util.progress)."""

  def __init__(self, total: int, start: int, enabled: bool = True):
    self.bar = progress_lib.bar(total, "meta-train", unit="upd", initial=start, enabled=enabled)

  def update(self, step: int, meta_loss: float) -> None:
    self.bar.set_postfix_str(f"meta-loss {meta_loss:.4f}", refresh=False)
    self.bar.update(step - self.bar.n)

  def close(self) -> None:
    self.bar.close()


def make_pool(cfg):
  n = int(cfg.workers.num_workers)
  if n == 0 or cfg.workers.mode == "inprocess":
    return pools.InProcessPool(cfg, cfg.seed, n)
  return pools.RayPool(cfg, cfg.seed, n)


def meta_train(
  cfg,
  workdir,
  progress: bool = True,
  max_seconds: float | None = None,
  stop_at_step: int | None = None,
  config_source: str | None = None,
) -> dict:
  """Runs (or resumes) meta-training; returns the final summary dict.

  `max_seconds` and `stop_at_step` end the run early with a checkpoint, as SIGTERM does
  (the schedule still spans `learner.num_updates`). `config_source` (the config file's name)
  goes into the lineage of every θ the run exports.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  theta0 = rule.init_theta(jax.random.PRNGKey(cfg.seed), cfg.rule)
  signature = checkpoint.theta_signature(theta0)
  saved = checkpoint.load_latest(workdir, signature)  # refuses another θ architecture
  _check_holdout(saved, cfg)
  if saved is None and cfg.learner.init_theta:
    theta0 = initial_theta_from_export(cfg.learner.init_theta, theta0, cfg.rule)
  origin = run_origin(cfg, workdir, config_source, saved)
  learner = learner_lib.Learner(cfg.learner, theta0)
  pool = make_pool(cfg)
  resumed_from = None
  elapsed_before = 0.0
  if saved is not None:
    try:  # structures come from this code; a leaf of another name or shape is refused
      learner.set_state(saved["learner"])
      if saved.get("pool") is not None:
        pool.set_state(saved["pool"])
      pools.set_counters(pool, saved.get("pool_counters") or {})
    except (checkpoint.CheckpointError, KeyError, TypeError, ValueError) as e:
      pool.close()
      raise checkpoint.CheckpointError(
        f"cannot resume from {saved['path']}: {type(e).__name__}: {e}. Nothing was "
        "overwritten; use a new --workdir or the code and config that wrote it."
      ) from e
    resumed_from = int(saved["step"])
    elapsed_before = float(saved.get("elapsed_sec", 0.0))
  best = _resumed_best(saved, workdir)
  validator = validation.Validator(cfg)
  export.write_config(workdir / "config.json", cfg)

  def save_checkpoint():
    payload = {
      "step": learner.step,
      "learner": learner.get_state(),
      "pool": pool.get_state(tasks=bool(cfg.learner.get("checkpoint_worker_tasks", True))),
      "pool_counters": pools.get_counters(pool),
      "theta_signature": signature,
      "config_json": cfg.to_json_best_effort(),
      "elapsed_sec": elapsed_before + (time.monotonic() - t_start),
      "validation_best": best,  # None until a validation ran
      "origin": origin,
    }
    return checkpoint.save(workdir, payload, keep=cfg.learner.keep_checkpoints)

  bar = Progress(cfg.learner.num_updates, learner.step, enabled=progress)
  t_start = time.monotonic()
  window = {"grads": 0, "inner_steps": 0, "t": time.monotonic()}
  per_dataset = collections.defaultdict(list)
  losses, accuracies = [], []
  last_loss = float("nan")
  total_grads = 0
  snapshot_every = int(cfg.learner.snapshot_every)
  _drop_records_after(workdir / "metrics.jsonl", learner.step)
  metrics_file = open(workdir / "metrics.jsonl", "a", encoding="utf-8")
  events = tensorboard.MetricsWriter(workdir)  # the same records as TensorBoard scalars
  try:
    with _StopFlag() as flag:
      while learner.step < cfg.learner.num_updates and not flag.stop:
        if max_seconds is not None and time.monotonic() - t_start > max_seconds:
          break
        if stop_at_step is not None and learner.step >= stop_at_step:
          break
        for result in pool.results(learner.theta, learner.step):
          window["grads"] += 1
          total_grads += 1
          window["inner_steps"] += result["inner_steps"]
          if learner.accept(result):
            losses.append(result["loss"])
            accuracies.append(result["metrics"]["accuracy"])
            per_dataset[result["dataset"]].append(result["loss"])
        if not learner.ready:
          continue
        stats = learner.apply()
        if stats["skipped"]:
          continue
        now = time.monotonic()
        dt = max(now - window["t"], 1e-9)
        last_loss = float(np.mean(losses))
        record = {
          "step": learner.step,
          "meta_loss": last_loss,
          "meta_loss_per_dataset": {k: float(np.mean(v)) for k, v in per_dataset.items()},
          "accuracy": float(np.mean(accuracies)),
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
          "meta_grads_total": _meta_grads(learner.counters),
          "elapsed_sec": elapsed_before + (now - t_start),
          **{k: stats[k] for k in ("hybrid_weight_pes",) if k in stats},
        }
        if validator.due(learner.step, int(cfg.learner.num_updates)):
          record.update(validator.run(learner.theta, learner.step))
          now = time.monotonic()  # the next update's rates leave the validation out
        metrics_file.write(files.dumps(record) + "\n")  # strict: a NaN loss is written null
        metrics_file.flush()
        events.write(record)
        if validation.is_better(record, best):
          best = validation.best_from_record(record)
          state = {
            "step": learner.step,
            "learner": {"counters": learner.counters},
            "elapsed_sec": elapsed_before + (now - t_start),
          }
          settings = validator.settings()
          summary = {
            **training_summary(workdir, state),
            "val_accuracy": best["accuracy"],
            "val_sem": best["sem"],
            "validation": settings,
            **provenance(origin, learner.step, lineage.selected_on(settings["task"], settings["seeds"])),
          }
          export.save_theta(workdir / validation.BEST_DIR, learner.theta, cfg, summary)
        window = {"grads": 0, "inner_steps": 0, "t": now}
        per_dataset.clear()
        losses, accuracies = [], []
        bar.update(learner.step, last_loss)
        if learner.step % cfg.learner.checkpoint_every == 0:
          save_checkpoint()
        if snapshot_every and learner.step % snapshot_every == 0:
          # θ-only, kept forever: the held-out curve of a run is evaluated from these.
          state = {
            "step": learner.step,
            "learner": {"counters": learner.counters},
            "elapsed_sec": elapsed_before + (now - t_start),
          }
          export.save_theta(
            workdir / "snapshots" / f"step_{learner.step:08d}",
            learner.theta,
            cfg,
            {**training_summary(workdir, state), **provenance(origin, learner.step)},
          )
  except KeyboardInterrupt:
    print("\ninterrupted: writing a final checkpoint", file=sys.stderr)
  except pools.WorkerConfigError:
    save_checkpoint()  # the updates made before every worker failed the same way are kept
    raise
  finally:
    metrics_file.close()
    events.close()
    pool.close()
    bar.close()
  path = save_checkpoint()
  elapsed = elapsed_before + (time.monotonic() - t_start)
  summary = {
    "step": learner.step,
    "meta_loss": last_loss,
    "resumed_from": resumed_from,
    "meta_grads": total_grads,
    "hours": elapsed / 3600.0,
    "meta_grads_per_sec": total_grads / max(time.monotonic() - t_start, 1e-9),
    "checkpoint": str(path),
    "validation_best": best,
    **{k: v for k, v in learner.counters.items()},
    "worker_restarts": pool.restarts,
    "worker_errors": pool.worker_errors,
  }
  export.save_theta(workdir / "theta", learner.theta, cfg, {**summary, **provenance(origin, learner.step)})
  return summary


def _drop_records_after(path: pathlib.Path, step: int) -> None:
  """Keeps the metrics records up to `step`: a run stopped after its last checkpoint logged
  updates that the resumed run makes again, and each update has one record."""
  if not path.is_file():
    return
  lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
  kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
  if len(kept) != len(lines):
    files.atomic_write_bytes(path, "".join(kept).encode("utf-8"))


def _meta_grads(counters) -> int:
  """Meta-gradients received so far (accepted, stale or non-finite): cumulative over resumes."""
  return int(counters["accepted"] + counters["stale"] + counters["nonfinite"])


def _held_out_sources(task_cfg: dict) -> tuple[str, ...]:
  """The sources whose meta-validation classes a run's `task` section leaves out (a config
  written before `validation_holdout_sources` existed held out imagenet and alphabet)."""
  if not bool(task_cfg.get("validation_holdout", False)):
    return ()
  return tuple(task_cfg.get("validation_holdout_sources", ("imagenet", "alphabet")))


def _check_holdout(saved, cfg) -> None:
  """Refuses a checkpoint written with another validation holdout that holds in-process
  workers' tasks on a held-out source: their class ids index the other class list."""
  if saved is None or saved.get("pool") is None:
    return
  old_cfg = json.loads(saved.get("config_json") or "{}")
  old = _held_out_sources(old_cfg.get("task", {}))
  new = _held_out_sources(cfg.task.to_dict())
  changed = [d for d in tuple(cfg.task.datasets) if (d in old) != (d in new)]
  if changed:
    raise checkpoint.CheckpointError(
      f"cannot resume from {saved['path']}: it was written with the meta-validation classes of "
      f"{list(old) or 'no source'} held out (task.validation_holdout / validation_holdout_sources) and "
      f"its workers' {'/'.join(changed)} tasks index that class list; resume with the checkpoint's "
      f"task.validation_holdout={bool(old)} and validation_holdout_sources, or use a new --workdir"
    )


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


# Rule fields that choose how the same values are computed (speed, not numerics).
_SAME_NUMERICS_FIELDS = ("implementation",)


def initial_theta_from_export(directory, template, rule_cfg=None):
  """θ of an export, checked against `template`'s architecture: a new run fine-tunes it.

  Only θ is taken: Adam's moments, the step and the schedule start afresh, so a smaller
  `learner.learning_rates` continues a run at a lower learning rate. The run's `rule` section
  must equal the export's (ExportError otherwise): a θ means something only with the rule
  settings it was trained under, and a hand-set rule's inner step or hebb_term is easily left
  out of the overrides. Fine-tune with the export's own config plus learner overrides.
  """
  theta, export_cfg, _ = export.load_theta(directory)
  if rule_cfg is not None and "rule" in export_cfg:
    theirs = export_cfg.rule.to_dict()
    differ = {
      k: (v, rule_cfg[k])
      for k, v in sorted(theirs.items())
      if k in rule_cfg and rule_cfg[k] != v and k not in _SAME_NUMERICS_FIELDS
    }
    if differ:
      raise export.ExportError(
        f"learner.init_theta={directory} was exported with other rule settings than this run's: "
        + ", ".join(f"rule.{k} {a!r} there, {b!r} here" for k, (a, b) in differ.items())
        + f". Start from the export's own config ({pathlib.Path(directory) / 'config.json'}: pass its rule "
        "values as --config.rule.<field> overrides) or use a config with the same rule section"
      )
  return export.unflatten_like(template, export.flatten_tree(theta), what=f"learner.init_theta={directory}")


def run_origin(cfg, workdir, config_source, saved) -> dict:
  """What every θ this run exports inherits: the start's lineage and track, this run's name,
  config, commit and holdout. A resumed run keeps the origin its checkpoint recorded.

  A start whose lineage is not clean (learned_update.lineage.problems) is refused unless
  `learner.require_clean_start` is False: a θ inherits every choice made for its ancestors.
  """
  if saved is not None and saved.get("origin"):
    return saved["origin"]
  start_lineage, start_track = [], None
  if cfg.learner.init_theta:
    _, _, start_summary = export.load_theta(cfg.learner.init_theta)
    found = lineage.problems(start_summary)
    if found and cfg.learner.require_clean_start:
      raise export.ExportError(
        f"learner.init_theta={cfg.learner.init_theta}: its lineage is not clean ({'; '.join(found)}). "
        "Start from a θ whose every ancestor ran with the validation holdout and was never selected on a "
        "test task, or set --config.learner.require_clean_start=False for a study that reports it as tainted"
      )
    start_lineage = list((start_summary or {}).get("lineage") or [{"run": str(cfg.learner.init_theta)}])
    start_track = (start_summary or {}).get("track")
  holdout = bool(cfg.task.validation_holdout)
  return {
    "run": str(workdir),
    "config": config_source,
    "commit": lineage.current_commit(),
    "validation_holdout": holdout,
    "track": lineage.combined_track(lineage.config_track(cfg), start_lineage, start_track),
    "start_lineage": start_lineage,
  }


def provenance(origin: dict, update: int, selected_on=None) -> dict:
  """The `track` and `lineage` fields of a summary.json for θ at `update` of this run."""
  entry = lineage.run_entry(
    origin["run"],
    origin["config"],
    update,
    origin["validation_holdout"],
    origin["start_lineage"],
    selected_on,
    commit=origin["commit"],
  )
  return {"track": origin["track"], "lineage": [*origin["start_lineage"], entry]}


def training_summary(workdir, payload: dict) -> dict:
  """Updates, meta-gradients, hours and final meta-loss of a checkpoint (for a θ export).

  The meta-loss is the mean over the last 10 logged updates up to the checkpoint's step:
  one update's loss depends on which few tasks its gradients came from.
  """
  step = int(payload["step"])
  counters = payload["learner"]["counters"]
  records = []
  metrics = pathlib.Path(workdir) / "metrics.jsonl"
  if metrics.is_file():
    with open(metrics, encoding="utf-8") as f:
      records = [r for r in map(json.loads, f) if r["step"] <= step]
  # null: a non-finite loss (strict JSON); old files may hold NaN, which json.loads reads.
  last = [r["meta_loss"] for r in records[-10:] if r["meta_loss"] is not None]
  first = [r["meta_loss"] for r in records[:10] if r["meta_loss"] is not None]
  return {
    "updates": step,
    "meta_grads": _meta_grads(counters),
    "hours": float(payload.get("elapsed_sec", 0.0)) / 3600.0,
    "final_meta_loss": float(np.mean(last)) if last else None,
    "first_meta_loss": float(np.mean(first)) if first else None,
    **{k: int(v) for k, v in counters.items()},
  }


def export_checkpoint(workdir, out_dir, step: int | None = None) -> dict:
  """Writes the θ-only export (theta.npz, config.json, summary.json) of a checkpoint.

  `step` None takes the newest checkpoint. Returns the summary.
  """
  if step is None:
    payload = checkpoint.load_latest(workdir)  # skips an unreadable newest one, with a warning
  else:
    path = pathlib.Path(workdir) / checkpoint.checkpoint_name(step)
    payload = None
    if path in checkpoint.list_checkpoints(workdir):
      payload = {**checkpoint.load_path(path), "path": str(path)}
  if payload is None:
    raise checkpoint.CheckpointError(
      f"no checkpoint{'' if step is None else f' of step {step}'} in {workdir} "
      f"(expected files named {checkpoint.checkpoint_name(0).replace('0', '#')})"
    )
  theta, cfg = checkpoint.theta_from_payload(payload)
  summary = {"checkpoint": pathlib.Path(payload["path"]).name, **training_summary(workdir, payload)}
  origin = payload.get("origin") or run_origin(cfg, workdir, None, None)
  summary.update(provenance(origin, int(payload["step"])))
  export.save_theta(out_dir, theta, cfg, summary)
  return summary
