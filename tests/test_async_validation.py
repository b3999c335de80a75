"""Asynchronous validation: an evaluator scores the trainer's snapshots as inline validation would."""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from meta_unsup_rules.configs import tiny
from meta_unsup_rules.distributed import evaluator as evaluator_lib
from meta_unsup_rules.distributed import run_files, trainer, validation
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.util import workdir_lock

pytestmark = pytest.mark.slow

VAL_FIELDS = (
  "val_accuracy",
  "val_sem",
  "val_per_seed",
  "val_effective_rank",
  "val_top_component",
  "val_step",
)


def _cfg(mode):
  cfg = tiny.get_config()
  cfg.validation.update(dict(every=2, mode=mode))
  cfg.learner.num_updates = 4
  return cfg


class _NoSpawn:
  """Stands in for the evaluator child process: the test runs the evaluator itself."""

  def __init__(self, workdir, cfg):
    self.started = 0

  def ensure_running(self):
    self.started += 1

  def detach(self):
    pass


def _inline_and_async(tmp_path, monkeypatch):
  trainer.meta_train(_cfg("inline"), tmp_path / "inline", progress=False)
  monkeypatch.setattr(evaluator_lib, "EvaluatorProcess", _NoSpawn)
  trainer.meta_train(_cfg("async"), tmp_path / "async", progress=False)
  return tmp_path / "inline", tmp_path / "async"


def test_async_validation_equals_inline_and_a_killed_evaluator_fills_the_gap(tmp_path, monkeypatch):
  inline, async_dir = _inline_and_async(tmp_path, monkeypatch)
  # The trainer wrote the due snapshots and validated nothing itself.
  assert sorted(p.name for p in (async_dir / "snapshots").iterdir()) == ["step_00000002", "step_00000004"]
  assert not any(
    "val_accuracy" in json.loads(l) for l in (async_dir / "metrics.jsonl").read_text().splitlines()
  )

  assert [s for s, _, _ in evaluator_lib.Evaluator(async_dir, newest_first=True).pending()] == [4, 2]
  ev = evaluator_lib.Evaluator(async_dir)
  assert [s for s, _, _ in ev.pending()] == [2, 4]
  assert ev.run() == 2
  # Killed after the first record: the last line is lost; a restart scores only what is missing.
  path = async_dir / run_files.VALIDATION
  first = path.read_text().splitlines()[0]
  path.write_text(first + "\n" + '{"step": 4, "val_acc')  # a record cut short by the kill
  assert [s for s, _, _ in evaluator_lib.Evaluator(async_dir).pending()] == [4]
  assert evaluator_lib.Evaluator(async_dir).run() == 1
  assert evaluator_lib.Evaluator(async_dir).run() == 0

  merged = {r["step"]: r for r in validation.merged_records(async_dir) if "val_accuracy" in r}
  inline_records = {r["step"]: r for r in validation.merged_records(inline) if "val_accuracy" in r}
  assert sorted(merged) == sorted(inline_records) == [2, 4]
  for step in (2, 4):
    for field in VAL_FIELDS:
      np.testing.assert_allclose(merged[step][field], inline_records[step][field], rtol=1e-6, err_msg=field)
  # The same best/ θ and the same training figure's validation row.
  _, _, best_async = export.load_theta(async_dir / "best")
  _, _, best_inline = export.load_theta(inline / "best")
  assert (
    best_async["updates"] == best_inline["updates"]
    and best_async["val_accuracy"] == best_inline["val_accuracy"]
  )
  assert best_async["lineage"][-1]["selected_on"] == best_inline["lineage"][-1]["selected_on"]
  from meta_unsup_rules.evaluation import plots

  a = plots.plot_training(validation.merged_records(async_dir), tmp_path / "a.png", smooth=2)
  b = plots.plot_training(validation.merged_records(inline), tmp_path / "b.png", smooth=2)
  assert a["val_best"] == b["val_best"]


def test_partly_written_and_rewritten_snapshots(tmp_path, monkeypatch):
  _, async_dir = _inline_and_async(tmp_path, monkeypatch)
  snap = async_dir / "snapshots" / "step_00000004"
  summary = (snap / "summary.json").read_bytes()
  (snap / "summary.json").unlink()  # written last: without it the snapshot is still being written
  assert [s for s, _, _ in evaluator_lib.Evaluator(async_dir).pending()] == [2]
  (snap / "summary.json").write_bytes(summary)
  assert evaluator_lib.Evaluator(async_dir).run() == 2
  # The trainer redid update 4 with another θ (a resume without its workers' tasks): scored again.
  shutil.copy(async_dir / "snapshots" / "step_00000002" / "theta.npz", snap / "theta.npz")
  assert [s for s, _, _ in evaluator_lib.Evaluator(async_dir).pending()] == [4]


def test_one_evaluator_per_workdir(tmp_path, monkeypatch):
  _, async_dir = _inline_and_async(tmp_path, monkeypatch)
  with workdir_lock.WorkdirLock(async_dir / run_files.EVALUATOR_LOCK, "an evaluator"):
    with pytest.raises(workdir_lock.LockHeld, match="in use by an evaluator"):
      evaluator_lib.Evaluator(async_dir).run()


def test_the_trainer_starts_its_evaluator_which_ends_after_it(tmp_path):
  """The real child process: it follows the run, then scores the last snapshot and ends."""
  cfg = _cfg("async")
  workdir = tmp_path / "run"
  trainer.meta_train(cfg, workdir, progress=False)
  deadline = time.time() + 240
  while time.time() < deadline:
    steps = [r["step"] for r in validation.read_validation_records(workdir)]
    if steps == [2, 4] and not workdir_lock.is_held(workdir / run_files.EVALUATOR_LOCK):
      break
    time.sleep(2)
  log = (workdir / run_files.EVALUATOR_LOG).read_text(errors="replace")
  assert [r["step"] for r in validation.read_validation_records(workdir)] == [2, 4], log[-3000:]
  assert "validated update 4" in log
  assert (workdir / "best" / "summary.json").is_file()


def test_validate_script_on_a_plain_folder_exits_2(tmp_path):
  proc = subprocess.run(
    [sys.executable, "-m", "meta_unsup_rules.scripts.validate", f"--workdir={tmp_path}"],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2 and "config.json not found" in proc.stderr


def test_evaluator_cpus_are_parsed():
  assert evaluator_lib.parse_cpus("0,2-3") == [0, 2, 3]
  assert evaluator_lib.parse_cpus("") == list(range(__import__("os").cpu_count()))
  with pytest.raises(ValueError):
    evaluator_lib.parse_cpus("a-b")
