"""A run cannot be corrupted: one trainer per workdir, settings kept on resume, exit codes that say what
happened, nothing left by a run that never started, evaluations that never replace each other."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from meta_unsup_rules.configs import tiny
from meta_unsup_rules.distributed import checkpoint, run_config, run_files, trainer
from meta_unsup_rules.tasks import data_dir as dd
from meta_unsup_rules.util import workdir_lock

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(*args, cwd=ROOT, timeout=600, **kw):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw
  )


def _train(workdir, *overrides, timeout=600):
  return _run(
    "scripts.meta_train",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    "--no_progress",
    *overrides,
    timeout=timeout,
  )


# ------------------------------------------------------------------------------- one trainer


def test_a_second_trainer_on_a_workdir_exits_2_naming_the_first(tmp_path):
  workdir = tmp_path / "run"
  with workdir_lock.WorkdirLock(workdir / run_files.TRAINER_LOCK, "a trainer"):
    proc = _train(workdir, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert f"PID {os.getpid()}" in proc.stderr and "in use by a trainer" in proc.stderr
  assert not list(workdir.glob("checkpoint_*")) and not (workdir / "metrics.jsonl").exists()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / run_files.TRAINER_LOCK).write_text("999999 deadhost\n")  # a holder that died
  cfg = tiny.get_config()
  cfg.learner.num_updates = 1
  trainer.meta_train(cfg, workdir, progress=False)
  assert "left by PID 999999 on deadhost, which no longer runs" in capsys.readouterr().err
  assert not (workdir / run_files.TRAINER_LOCK).exists()  # released at the end


# ----------------------------------------------------------------------------- settings kept


def test_resume_refuses_changed_settings_and_records_run_control_changes(tmp_path):
  workdir = tmp_path / "run"
  cfg = tiny.get_config()
  cfg.learner.num_updates = 2
  trainer.meta_train(cfg, workdir, progress=False)
  stored = (workdir / "config.json").read_bytes()
  files_before = sorted(p.name for p in workdir.iterdir())
  proc = _train(workdir, "--config.rule.inner_lr=0.01", "--config.base_model.hidden_widths=(32,32)")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "rule.inner_lr: 0.0001 → 0.01" in proc.stderr and "base_model.hidden_widths" in proc.stderr
  assert (workdir / "config.json").read_bytes() == stored and sorted(
    p.name for p in workdir.iterdir()
  ) == files_before
  # Run control may change: the run goes on, the stored config stays, the change is in the history.
  more = cfg.copy_and_resolve_references()
  more.learner.update(dict(num_updates=3, snapshot_every=3))
  summary = trainer.meta_train(more, workdir, progress=False)
  assert summary["step"] == 3 and (workdir / "config.json").read_bytes() == stored
  history = checkpoint.load_latest(workdir)["config_history"]
  assert {"update": 2, "field": "learner.num_updates", "from": 2, "to": 3} in history
  assert any(h["field"] == "learner.snapshot_every" for h in history)


def test_a_field_the_stored_config_lacks_keeps_the_old_behaviour():
  cfg = tiny.get_config()
  stored = json.loads(cfg.to_json_best_effort())
  del stored["task"]["disjoint_batches"]  # a run from before the setting
  effective, changes = run_config.resolve(json.dumps(stored), cfg)
  assert effective.task.disjoint_batches is False and not changes
  with pytest.raises(run_config.ConfigDrift, match="task.disjoint_batches: absent from the stored config"):
    run_config.resolve(json.dumps(stored), cfg, explicit=("task.disjoint_batches",))


def test_a_finished_run_says_so_and_writes_nothing(tmp_path):
  workdir = tmp_path / "run"
  cfg = tiny.get_config()
  cfg.learner.num_updates = 1
  trainer.meta_train(cfg, workdir, progress=False)
  before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
  proc = _train(workdir, "--config.learner.num_updates=1")
  assert proc.returncode == 0 and "the run is finished (update 1" in proc.stderr
  assert json.loads(proc.stdout.strip().splitlines()[-1])["already_finished"] is True
  assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before


# -------------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
  "args",
  [["--seeds=three"], ["--config.learner.batch_size=abc"], ["--seed=3"], ["--config=no/such/config.py"]],
  ids=["type", "config_type", "unknown_flag", "missing_config"],
)
def test_flag_errors_exit_2(args):
  proc = _run("scripts.evaluate", *args, timeout=120)
  assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, (
    proc.stderr
  )


def test_sigint_writes_a_checkpoint_exits_130_and_resumes(tmp_path):
  workdir = tmp_path / "run"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  cmd = [sys.executable, "-m", "scripts.meta_train", "--config=configs/tiny.py", f"--workdir={workdir}"]
  proc = subprocess.Popen(
    [*cmd, "--no_progress", "--config.learner.num_updates=1000"],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
    time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err[-2000:]
  saved = checkpoint.load_latest(workdir)
  assert saved is not None and saved["step"] >= 2
  cfg = tiny.get_config()
  cfg.learner.num_updates = saved["step"] + 1
  summary = trainer.meta_train(cfg, workdir, progress=False)
  assert summary["resumed_from"] == saved["step"] and summary["step"] == saved["step"] + 1


def test_a_run_that_fails_before_its_first_update_leaves_no_workdir(tmp_path):
  workdir = tmp_path / "run"
  empty = tmp_path / "no_data"
  empty.mkdir()
  proc = _train(workdir, f"--data_dir={empty}", timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "(from --data_dir)" in proc.stderr or "missing" in proc.stderr
  assert not workdir.exists()


def test_the_data_directory_error_names_its_source(tmp_path, monkeypatch):
  monkeypatch.setenv(dd.DATA_DIR_ENV, str(tmp_path / "gone"))
  monkeypatch.delenv(dd.DATA_DIR_SOURCE_ENV, raising=False)
  with pytest.raises(dd.DataError, match=f"from {dd.DATA_DIR_ENV}"):
    dd.resolve_data_dir()
  monkeypatch.setenv(dd.DATA_DIR_SOURCE_ENV, "--data_dir")  # what the flag sets when it exports itself
  with pytest.raises(dd.DataError, match="from --data_dir"):
    dd.resolve_data_dir()
  monkeypatch.delenv(dd.DATA_DIR_ENV)
  monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
  assert dd.user_data_dir() == tmp_path / "xdg" / "meta_unsup" / "data"


# ------------------------------------------------------------------------------- evaluations


def test_two_evaluations_of_one_task_are_both_kept(tmp_path):
  args = (
    "--task=two_moons",
    "--inner_steps=4",
    "--eval_every=4",
    "--seeds=1",
    "--methods=learned,random_init",
    "--config=configs/tiny.py",
  )
  first = _run("scripts.evaluate", "--theta=random", *args, cwd=tmp_path, timeout=300)
  second = _run(
    "scripts.evaluate",
    f"--theta={ROOT / 'checkpoints' / 'ojac_hand_clean'}",
    *args,
    "--config.base_model.hidden_widths=(128,128,128,128)",
    "--config.base_model.top_width=32",
    cwd=tmp_path,
    timeout=300,
  )
  assert first.returncode == 0, first.stderr[-2000:]
  assert second.returncode == 0, second.stderr[-2000:]
  folders = sorted(p.name for p in (tmp_path / "runs" / "eval" / "two_moons").iterdir())
  assert len(folders) == 2 and folders[0].startswith("ojac_hand_clean-") and folders[1].startswith("random-")
  for f in folders:
    assert (tmp_path / "runs" / "eval" / "two_moons" / f / "results.json").is_file()
    assert (tmp_path / "runs" / "eval" / "two_moons" / f / "tensorboard").is_dir()
