"""Asynchronous meta-validation: a separate process scores a run's θ snapshots while it trains.

With `validation.mode = "async"` the trainer does not validate: at each due update (every
`validation.every` and the last) it writes the θ snapshot `snapshots/step_<N>/` and goes on, and
an evaluator (`Evaluator.run`, the command `scripts.validate`) scores the due snapshots with
exactly what inline validation runs (distributed/validation.py `Validator.run`: the same task,
seeds, steps and record fields, effective rank included). The evaluator

* writes only its own files: `validation.jsonl` (one record per scored snapshot, the fields of
  an inline validation plus `step` and the snapshot's θ digest), its TensorBoard scalars (an
  event file of its own beside the trainer's) and `best/` (the best θ so far, as inline mode
  exports it). A trainer's resume truncates `metrics.jsonl` to its checkpoint; it never touches
  `validation.jsonl`. `validation.merged_records` joins the two for the plots;
* never scores a partly written snapshot: `save_theta` writes `summary.json` last, and a
  snapshot without it is not yet there;
* scores what was not scored, whenever it (re)starts: a snapshot is done when a record with its
  step and its θ's digest exists, so a killed evaluator fills the gap when it is started again,
  and a snapshot rewritten with another θ (a trainer resumed from an earlier checkpoint without
  its workers' tasks redoes those updates) is scored again, the later record winning;
* takes its own lock (`evaluator.lock`; one evaluator per workdir), not the trainer's; with
  `follow` it waits for new snapshots while the trainer's lock is held and ends once the trainer
  has ended and nothing is left to score.

The trainer starts it as a child process (`spawn`) in a session of its own, so a Ctrl-C to the
trainer leaves it to finish the last snapshot; it runs on `validation.evaluator_cpus` ("" = every
CPU of the machine). The trainer starts it again at a due update if it has died.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import subprocess
import sys
import time

from absl import logging

from meta_unsup_rules.distributed import provenance, run_files, validation
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.util import config_compat, files, tensorboard, workdir_lock

_SNAPSHOT = re.compile(r"^step_(\d{8})$")


def theta_digest(snapshot_dir) -> str:
  """The first 16 hex digits of the sha256 of a snapshot's theta.npz."""
  return hashlib.sha256((pathlib.Path(snapshot_dir) / "theta.npz").read_bytes()).hexdigest()[:16]


def is_complete(snapshot_dir) -> bool:
  """Whether a snapshot is fully written (`export.save_theta` writes summary.json last)."""
  d = pathlib.Path(snapshot_dir)
  return all((d / name).is_file() for name in ("theta.npz", "config.json", "summary.json"))


def parse_cpus(spec: str) -> list[int]:
  """ "0,2-3" → [0, 2, 3]; "" → every CPU of the machine. ValueError names a bad entry."""
  spec = str(spec or "").strip()
  if not spec:
    return list(range(os.cpu_count() or 1))
  out = []
  for part in spec.split(","):
    lo, sep, hi = part.strip().partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
      raise ValueError(f"CPU list {spec!r}: {part!r} is not N or N-M")
    out.extend(range(int(lo), int(hi if sep else lo) + 1))
  return sorted(set(out))


class Evaluator:
  """Scores the due snapshots of one workdir (see the module docstring)."""

  def __init__(self, workdir, every_snapshot: bool = False, newest_first: bool = False):
    self.workdir = pathlib.Path(workdir)
    if not (self.workdir / "config.json").is_file():
      raise FileNotFoundError(
        f"{self.workdir / 'config.json'} not found: expected a meta-training workdir "
        "(scripts.meta_train writes it)"
      )
    self.every_snapshot = every_snapshot
    # A decision usually needs the latest θs; the earlier ones only fill in the curve.
    self.newest_first = newest_first
    self._validators: dict[str, validation.Validator] = {}
    self.events = None

  def _run_config(self):
    return export.load_config_json(self.workdir / "config.json")

  def is_due(self, step: int, cfg) -> bool:
    if self.every_snapshot:
      return True
    every = int(cfg.validation.every)
    return every > 0 and (step % every == 0 or step == int(cfg.learner.num_updates))

  def scored(self) -> set[tuple[int, str]]:
    return {
      (int(r["step"]), r.get("snapshot_digest")) for r in validation.read_validation_records(self.workdir)
    }

  def pending(self) -> list[tuple[int, pathlib.Path, str]]:
    """(step, snapshot dir, θ digest) of every due, complete, unscored snapshot, oldest first
    (newest first with `newest_first`)."""
    cfg = self._run_config()
    done = self.scored()
    out = []
    snapshots = self.workdir / run_files.SNAPSHOTS
    for d in sorted(snapshots.iterdir()) if snapshots.is_dir() else []:
      m = _SNAPSHOT.match(d.name)
      if not m or not self.is_due(int(m.group(1)), cfg) or not is_complete(d):
        continue
      digest = theta_digest(d)
      if (int(m.group(1)), digest) not in done:
        out.append((int(m.group(1)), d, digest))
    return out[::-1] if self.newest_first else out

  def _validator(self, cfg) -> validation.Validator:
    key = cfg.to_json_best_effort(sort_keys=True)
    if key not in self._validators:
      self._validators[key] = validation.Validator(cfg)
    return self._validators[key]

  def score(self, step: int, snapshot: pathlib.Path, digest: str) -> dict:
    """Validates one snapshot; appends its record, writes its scalars and `best/` if it is better."""
    theta, cfg, summary = export.load_theta(snapshot)
    validator = self._validator(cfg)
    record = {"step": int(step), **validator.run(theta, step), "snapshot_digest": digest}
    record["val_scored_at"] = time.time()
    path = self.workdir / run_files.VALIDATION
    cut_short = path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as f:
      # A record cut short by a kill stays an unreadable line of its own (readers skip it).
      f.write(("\n" if cut_short else "") + files.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())
    if self.events is None:
      self.events = tensorboard.MetricsWriter(self.workdir)
    self.events.write({k: v for k, v in record.items() if k not in ("val_per_seed", "snapshot_digest")})
    best = validation.best_on_disk(self.workdir)
    if validation.is_better(record, best):
      settings = validator.settings()
      best_summary = dict(summary or {})
      if best_summary.get("lineage"):
        best_summary["lineage"] = [*best_summary["lineage"][:-1], dict(best_summary["lineage"][-1])]
        chosen = provenance.selected_on(settings["task"], settings["seeds"])
        best_summary["lineage"][-1]["selected_on"] = chosen
      best_summary.update(val_accuracy=record["val_accuracy"], val_sem=record["val_sem"], validation=settings)
      best_summary["updates"] = int(step)
      export.save_theta(self.workdir / validation.BEST_DIR, theta, cfg, best_summary)
    return record

  def run(self, follow: bool = False, poll_sec: float = 5.0, log=print) -> int:
    """Scores pending snapshots; with `follow`, waits for more while the trainer runs. Returns
    the number scored. Raises workdir_lock.LockHeld if another evaluator holds this workdir."""
    n = 0
    with workdir_lock.WorkdirLock(self.workdir / run_files.EVALUATOR_LOCK, "an evaluator"):
      try:
        while True:
          trainer_running = workdir_lock.is_held(self.workdir / run_files.TRAINER_LOCK)
          todo = self.pending()
          for step, snapshot, digest in todo:
            record = self.score(step, snapshot, digest)
            n += 1
            log(
              f"validated update {step}: {record['val_accuracy']:.4f} ± {record['val_sem'] or 0:.4f} "
              f"(effective rank {record['val_effective_rank']:.1f}, {record['val_sec']:.0f} s)"
            )
          if not follow or (not todo and not trainer_running):
            return n
          if not todo:
            time.sleep(poll_sec)
      finally:
        if self.events is not None:
          self.events.close()
          self.events = None


def spawn(workdir, cfg) -> subprocess.Popen:
  """Starts `scripts.validate --follow` on `workdir` as a child in a session of its own, on
  `validation.evaluator_cpus`, its output appended to `evaluator.log`. A second one started while
  one runs exits at once (the evaluator lock)."""
  cpus = parse_cpus(config_compat.read(cfg.validation, "validation.evaluator_cpus"))
  workdir = pathlib.Path(workdir)
  log = open(workdir / run_files.EVALUATOR_LOG, "ab")  # pylint: disable=consider-using-with  (the child's)
  cmd = [
    sys.executable,
    "-m",
    "meta_unsup_rules.scripts.validate",
    f"--workdir={workdir}",
    "--follow",
    "--no_progress",
  ]
  try:
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  finally:
    log.close()
  if hasattr(os, "sched_setaffinity"):  # before it imports JAX, which sizes its thread pools then
    try:
      os.sched_setaffinity(process.pid, cpus)
    except OSError as e:
      logging.warning("evaluator CPUs %s not set: %s", cpus, e)
  return process


class EvaluatorProcess:
  """The trainer's handle on its evaluator: started once, started again if it died."""

  def __init__(self, workdir, cfg):
    self.workdir, self.cfg = pathlib.Path(workdir), cfg
    self.process = None
    self.restarts = 0

  def ensure_running(self) -> None:
    if self.process is not None and self.process.poll() is None:
      return
    if self.process is not None:
      code = self.process.returncode
      if code not in (0, None):
        self.restarts += 1
        logging.warning("the evaluator of %s ended with status %s; starting it again", self.workdir, code)
    self.process = spawn(self.workdir, self.cfg)

  def detach(self) -> None:
    """The trainer ends: the evaluator scores what is left and ends by itself."""
    self.process = None
