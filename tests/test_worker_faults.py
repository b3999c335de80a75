"""Worker faults: an error costs its worker the task, not the run; identical errors everywhere stop it.

Also: every JSON line a meta-training run writes is strict JSON (NaN → null).
The Ray counterpart of the in-process tests is in tests/test_ray.py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from meta_unsup_rules.distributed import checkpoint, pools, trainer
from meta_unsup_rules.distributed import worker as worker_lib
from tests import faulty_worker


def _strict_loads(line: str):
  """json.loads that refuses NaN / Infinity (which Python's json would accept)."""
  return json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_fault_spec_is_parsed_and_checked():
  assert faulty_worker.parse("") == ("", None)
  assert faulty_worker.parse("raise_once") == ("raise_once", None)
  assert faulty_worker.parse("raise_always:worker=3") == ("raise_always", 3)
  for bad in ("raise", "raise_once:w=1", "raise_once:worker=x"):
    with pytest.raises(ValueError, match=faulty_worker.FAULT_ENV):
      faulty_worker.parse(bad)


def faults(monkeypatch, spec: str) -> None:
  """The pools build tests/faulty_worker.py's workers, raising as `spec` says."""
  monkeypatch.setenv(worker_lib.WORKER_CLASS_ENV, faulty_worker.HOOK)
  monkeypatch.setenv(faulty_worker.FAULT_ENV, spec)


def test_without_the_hook_the_pools_build_plain_workers(tiny_cfg, monkeypatch):
  monkeypatch.delenv(worker_lib.WORKER_CLASS_ENV, raising=False)
  assert worker_lib.worker_class() is worker_lib.TaskWorker
  faults(monkeypatch, "raise_once")
  assert worker_lib.worker_class() is faulty_worker.FaultyWorker
  assert "fault_injection" not in tiny_cfg.workers  # nothing of it in a production config


def test_only_the_same_error_from_every_worker_stops_the_run():
  tracker = pools.ErrorTracker(num_workers=2, max_consecutive=2)
  tracker.failed(0, "ValueError", "bad")
  tracker.failed(0, "ValueError", "bad")
  tracker.failed(1, "ValueError", "bad")
  tracker.succeeded(1)  # a success ends worker 1's streak
  tracker.failed(1, "ValueError", "bad")
  tracker.failed(0, "ValueError", "other")  # another message starts a new streak
  tracker.failed(1, "ValueError", "bad")
  assert tracker.count == 6
  tracker.failed(0, "ValueError", "bad")
  with pytest.raises(pools.WorkerConfigError, match="ValueError: bad"):
    tracker.failed(0, "ValueError", "bad")
  never = pools.ErrorTracker(num_workers=1, max_consecutive=0)
  for _ in range(10):
    never.failed(0, "ValueError", "bad")
  assert never.count == 10


@pytest.mark.slow
def test_a_worker_that_raises_once_is_reset_counted_and_training_finishes(tiny_cfg, tmp_path, monkeypatch):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=2, checkpoint_every=100))
  faults(monkeypatch, "raise_once:worker=0")
  summary = trainer.meta_train(cfg, tmp_path, progress=False)
  assert summary["step"] == 2 and summary["worker_errors"] == 1
  records = [_strict_loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [1, 2]
  assert [r["worker_errors"] for r in records] == [1, 1]
  assert all(np.isfinite(r["meta_loss"]) for r in records)


def test_cli_exits_2_when_every_worker_raises_the_same_error(tmp_path):
  env = dict(
    os.environ, **{worker_lib.WORKER_CLASS_ENV: faulty_worker.HOOK, faulty_worker.FAULT_ENV: "raise_always"}
  )
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.meta_train",
      "--config=configs/tiny.py",
      f"--workdir={tmp_path}",
      "--no_progress",
      "--config.workers.num_workers=2",
    ],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert out.returncode == 2, out.stderr[-3000:]
  assert "every worker (2) raised the same error 3 times in a row" in out.stderr
  assert "InjectedFault: injected fault" in out.stderr
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  assert not tmp_path.exists() or not checkpoint.list_checkpoints(tmp_path), "no update ran: nothing is kept"


@pytest.mark.slow
def test_last_json_line_of_a_run_resumed_at_its_final_step_is_strict(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=1, checkpoint_every=100))
  trainer.meta_train(cfg, tmp_path, progress=False)
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.meta_train",
      "--config=configs/tiny.py",
      f"--workdir={tmp_path}",
      "--no_progress",
      "--config.learner.num_updates=1",
    ],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  last = _strict_loads(out.stdout.strip().splitlines()[-1])
  assert last["step"] == 1 and last["resumed_from"] == 1
  assert last["meta_loss"] is None  # no update ran: NaN, written as null
