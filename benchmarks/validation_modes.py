"""Updates per hour of a paper-track-like run with inline against asynchronous validation, side by side.

Two short meta-training runs of one config from the same untrained θ, one after the other, each for
`minutes` of wall clock (scripts.meta_train in a child process):

* inline: the trainer on `train_core`, validating every `every` updates itself (it waits);
* async: the trainer on `train_core`, an evaluator process on `evaluator_core` scoring the snapshots.

Validation here uses `seeds` seeds (the runs validate every 100 updates on 10 seeds; fewer seeds more
often keeps the cost of validation relative to training at the same order, ~25-40 %, in minutes).
Staggered first tasks are off on both sides: their forward-only start would take most of the
minutes. Each mode starts with a cold compilation cache of its own, so both pay the same compiles
(the same tasks in the same order); `cold_cache=False` (tests) lets both use the warm one.
Reported per mode: updates per hour over the updates after the first, the trainer's seconds
waiting for validation (inline: the validations; async: writing the snapshot and checking on the
evaluator) as a share of its wall time, and for async the validations the evaluator finished.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(
  mode: str,
  workdir: pathlib.Path,
  config: str,
  minutes: float,
  every: int,
  seeds: int,
  train_core: int,
  evaluator_core: int,
  cold_cache: bool,
) -> dict:
  cmd = [
    "taskset",
    "-c",
    str(train_core),
    sys.executable,
    "-m",
    "meta_unsup_rules.scripts.meta_train",
    f"--config={config}",
    f"--workdir={workdir}",
    "--no_progress",
    f"--max_minutes={minutes}",
    f"--config.validation.every={every}",
    f"--config.validation.seeds={seeds}",
    f"--config.validation.mode={mode}",
    f"--config.validation.evaluator_cpus={evaluator_core}",
    "--config.unroll.stagger_first_task=False",
    "--config.learner.num_updates=100000",
  ]
  # A cold compilation cache of its own for each mode: both compile the same shapes in the same order
  # (the same task streams); a cache filled by the first run would hand the second its compiles.
  env = dict(os.environ)
  if cold_cache:
    env["META_UNSUP_JAX_CACHE"] = str(workdir.parent / f"jax_cache_{mode}")
  t = time.monotonic()
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
  wall = time.monotonic() - t
  if proc.returncode != 0:
    raise RuntimeError(f"{mode} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
  records = [
    json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()
  ]
  span = records[-1]["elapsed_sec"] - records[0]["elapsed_sec"]
  waits = sum(r.get("val_sec", 0.0) if mode == "inline" else r.get("val_wait_sec", 0.0) for r in records[1:])
  out = {
    "updates": len(records),
    "wall_sec": wall,
    "updates_per_hour": 3600.0 * (len(records) - 1) / max(span, 1e-9),
    "validation_wait_sec": waits,
    "validation_wait_share": waits / max(span, 1e-9),
    "trainer_core": train_core,
  }
  if mode == "inline":
    out["validations"] = sum(1 for r in records if r.get("val_accuracy") is not None)
  else:
    out["evaluator_core"] = evaluator_core
    deadline = time.monotonic() + 600  # the evaluator finishes the last snapshots after the trainer
    while time.monotonic() < deadline and (workdir / "evaluator.lock").exists():
      time.sleep(2)
    scored = [
      json.loads(line) for line in (workdir / "validation.jsonl").read_text().splitlines() if line.strip()
    ]
    out["validations"] = len(scored)
    out["validation_sec_mean"] = sum(r["val_sec"] for r in scored) / max(len(scored), 1)
  return out


def measure(
  config: str = "configs/paper_track.py",
  minutes: float = 6.0,
  every: int = 10,
  seeds: int = 2,
  train_core: int = 1,
  evaluator_core: int = 0,
  cold_cache: bool = True,
  log=print,
) -> dict:
  """{"inline": {...}, "async": {...}, "speedup": async / inline updates per hour}."""
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  if len(cores) < 2:
    return {"skipped": f"needs two cores, this process may use {cores}"}
  base = pathlib.Path(tempfile.mkdtemp(prefix="bench_validation_"))
  result = {"config": config, "minutes": minutes, "every": every, "seeds": seeds}
  try:
    for mode in ("inline", "async"):
      log(f"  {mode}: {minutes} min of {config}, validation every {every} updates on {seeds} seeds")
      result[mode] = _run(
        mode, base / mode, config, minutes, every, seeds, train_core, evaluator_core, cold_cache
      )
      r = result[mode]
      log(
        f"  {mode}: {r['updates']} updates, {r['updates_per_hour']:.0f} per hour, waiting for validation "
        f"{100 * r['validation_wait_share']:.1f} % of the trainer's time, {r['validations']} validations"
      )
  finally:
    shutil.rmtree(base, ignore_errors=True)
  result["speedup"] = result["async"]["updates_per_hour"] / result["inline"]["updates_per_hour"]
  log(f"  async / inline updates per hour: x{result['speedup']:.2f}")
  return result
