"""Everything a meta-training run writes, behind one object: the trainer hands it each update's record
and θ, and it decides what goes where (distributed/run_files.py names the files).

* `metrics.jsonl` (one strict-JSON record per update) and the same record as TensorBoard scalars;
* the progress line (updates, rate, ETA, meta-loss);
* validation every `validation.every` updates and at the last: inline (the trainer waits; the fields
  go into that update's record) or async (a θ snapshot for the evaluator process, which it starts and
  restarts; what that cost the trainer goes into the next record as `val_wait_sec`);
* `best/` (inline: the best validated θ so far; async: the evaluator's);
* θ snapshots every `learner.snapshot_every` updates;
* checkpoints (atomic; the newest `learner.keep_checkpoints` kept) and the final `theta/` export.

Every θ export carries a training summary and its provenance (distributed/provenance.py).
"""

from __future__ import annotations

import json
import pathlib
import time

from meta_unsup_rules.distributed import checkpoint, provenance, run_files, validation
from meta_unsup_rules.distributed import evaluator as evaluator_lib
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.util import files, tensorboard
from meta_unsup_rules.util import progress as progress_lib


class Progress:
  """Updates done of `learner.num_updates`, rate, ETA and the meta-loss on stderr (util.progress)."""

  def __init__(self, total: int, start: int, enabled: bool = True):
    self.bar = progress_lib.bar(total, "meta-train", unit="upd", initial=start, enabled=enabled)

  def update(self, step: int, meta_loss: float) -> None:
    self.bar.set_postfix_str(f"meta-loss {meta_loss:.4f}", refresh=False)
    self.bar.update(step - self.bar.n)

  def close(self) -> None:
    self.bar.close()


class RunOutputs:
  """The outputs of one run (module docstring). `origin` is the run's provenance origin; `best` the
  running validation best of a resumed run (None for a new one)."""

  def __init__(self, cfg, workdir: pathlib.Path, origin: dict, best: dict | None):
    self.cfg, self.workdir, self.origin, self.best = cfg, workdir, origin, best
    self.validator = validation.Validator(cfg)
    self.evaluator = None
    self.async_wait = None
    self.metrics_file = self.events = self.bar = None

  def open(self, step: int, progress: bool) -> None:
    """Starts writing at update `step` (records of later updates, from before a resume, go)."""
    self.bar = Progress(self.cfg.learner.num_updates, step, enabled=progress)
    _drop_records_after(self.workdir / run_files.METRICS, step)
    self.metrics_file = open(self.workdir / run_files.METRICS, "a", encoding="utf-8")
    self.events = tensorboard.MetricsWriter(self.workdir)  # the same records as TensorBoard scalars
    if not self.validator.inline and self.validator.every > 0:
      self.evaluator = evaluator_lib.EvaluatorProcess(self.workdir, self.cfg)
      self.evaluator.ensure_running()  # scores what an earlier session left unscored

  def close(self) -> None:
    if self.evaluator is not None:
      self.evaluator.detach()  # it scores the last snapshots and ends by itself
    for out in (self.metrics_file, self.events, self.bar):
      if out is not None:
        out.close()

  def update(self, record: dict, theta, step: int, summary_now) -> float:
    """Writes update `step`'s record (with an inline validation when due), the best θ, a snapshot when
    due; `summary_now(now)` is the training summary for a θ export. Returns the time the next
    update's rates count from (after an inline validation)."""
    now = time.monotonic()
    if self.async_wait is not None:
      record["val_wait_sec"], self.async_wait = self.async_wait, None
    due = self.validator.due(step, int(self.cfg.learner.num_updates))
    if due and self.validator.inline:
      record.update(self.validator.run(theta, step))
      now = time.monotonic()  # the next update's rates leave the validation out
    self.metrics_file.write(files.dumps(record) + "\n")  # strict: a NaN loss is written null
    self.metrics_file.flush()
    self.events.write(record)
    if validation.is_better(record, self.best):
      self.best = validation.best_from_record(record)
      self._export_best(theta, step, summary_now(now))
    self.bar.update(step, record["meta_loss"])
    return now

  def after_checkpoint(self, theta, step: int, summary_now, now: float) -> None:
    """A snapshot when due: every `learner.snapshot_every`, and for the evaluator at its due steps."""
    snapshot_every = int(self.cfg.learner.snapshot_every)
    due = self.validator.due(step, int(self.cfg.learner.num_updates))
    t_wait = time.monotonic()
    if (snapshot_every and step % snapshot_every == 0) or (due and not self.validator.inline):
      self._snapshot(theta, step, summary_now(now))  # the evaluator scores the snapshots of its steps
    if due and self.evaluator is not None:
      self.evaluator.ensure_running()  # again, if it died
      # What async validation cost the trainer (the snapshot, the check): in the next update's record.
      self.async_wait = time.monotonic() - t_wait

  def _export_best(self, theta, step: int, summary: dict) -> None:
    settings = self.validator.settings()
    selected_on = provenance.selected_on(settings["task"], settings["seeds"])
    summary = {
      **summary,
      "val_accuracy": self.best["accuracy"],
      "val_sem": self.best["sem"],
      "validation": settings,
      **provenance.lineage_fields(self.origin, step, selected_on),
    }
    export.save_theta(self.workdir / run_files.BEST, theta, self.cfg, summary)

  def _snapshot(self, theta, step: int, summary: dict) -> None:
    """θ-only, kept forever: the held-out curve of a run is evaluated from these."""
    export.save_theta(
      self.workdir / run_files.SNAPSHOTS / f"step_{step:08d}",
      theta,
      self.cfg,
      {**summary, **provenance.lineage_fields(self.origin, step)},
    )

  def checkpoint(self, payload: dict) -> pathlib.Path:
    """Writes a checkpoint (atomically; the newest `learner.keep_checkpoints` readable ones kept)."""
    return checkpoint.save(self.workdir, payload, keep=self.cfg.learner.keep_checkpoints)

  def final_export(self, theta, step: int, summary: dict) -> None:
    """`theta/`: θ at the end of a session, with the run's summary and provenance."""
    export.save_theta(
      self.workdir / run_files.THETA,
      theta,
      self.cfg,
      {**summary, **provenance.lineage_fields(self.origin, step)},
    )

  def best_now(self) -> dict | None:
    """The running validation best (async: the evaluator's `best/`)."""
    return self.best if self.validator.inline else validation.best_on_disk(self.workdir)


def _drop_records_after(path: pathlib.Path, step: int) -> None:
  """Keeps the metrics records up to `step`: a run stopped after its last checkpoint logged
  updates that the resumed run makes again, and each update has one record."""
  if not path.is_file():
    return
  lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
  kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
  if len(kept) != len(lines):
    files.atomic_write_bytes(path, "".join(kept).encode("utf-8"))
