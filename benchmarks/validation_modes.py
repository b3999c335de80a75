"""Updates per hour of a paper-track-like run with inline against asynchronous validation, side by side.

Two short meta-training runs of one config from the same untrained θ, one after the other, each for
`minutes` of wall clock (scripts.meta_train in a child process):

* inline: the trainer on `train_core`, validating every `every` updates itself (it waits);
* async: the trainer on `train_core`, an evaluator process on `evaluator_core` scoring the snapshots.

Validation here uses `seeds` seeds (the runs validate every 100 updates on 10 seeds; fewer seeds more
often keeps the cost of validation relative to training at the same order, ~25-40 %, in minutes).
Staggered first tasks are off on both sides: their forward-only start would take most of the
minutes. The tasks have one architecture (ONE_SHAPE), compiled by a short warm-up run into a cache
both measured runs share, so they time training and validation, not compiling. Reported per mode:
updates per hour from the first update's record to the session's end (the last inline validation
included), the trainer's seconds waiting for validation (inline: the validations; async: writing
the snapshot and checking on the evaluator) as a share of that time, and the validations done.
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


# One architecture for the benchmark's tasks (depth 3 × 128, the local config's largest): one compile,
# which the warm-up run makes, so the measured runs time training and validation, not compiling.
ONE_SHAPE = (
  "--config.task.depth_min=3",
  "--config.task.depth_max=3",
  "--config.task.width_min=128",
  "--config.task.width_max=128",
  "--config.task.width_grid=1",
)


def _run(
  mode: str,
  workdir: pathlib.Path,
  config: str,
  minutes: float,
  every: int,
  seeds: int,
  train_core: int,
  evaluator_core: int,
  cache_dir: pathlib.Path | None,
  task_overrides=ONE_SHAPE,
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
    *task_overrides,
  ]
  env = dict(os.environ)
  if cache_dir is not None:
    env["META_UNSUP_JAX_CACHE"] = str(cache_dir)
  t = time.monotonic()
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
  wall = time.monotonic() - t
  if proc.returncode != 0:
    raise RuntimeError(f"{mode} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  records = [
    json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()
  ]
  # From the first update's record (its compile behind it) to the end of the session (the last
  # inline validation included): what the trainer got done per hour of its wall clock.
  span = 3600.0 * float(summary["hours"]) - records[0]["elapsed_sec"]
  waits = sum(r.get("val_sec", 0.0) if mode == "inline" else r.get("val_wait_sec", 0.0) for r in records[1:])
  out = {
    "updates": len(records),
    "wall_sec": wall,
    "measured_sec": span,
    "updates_per_hour": 3600.0 * (len(records) - 1) / max(span, 1e-9),
    "validation_wait_sec": waits,
    "validation_wait_share": waits / max(span, 1e-9),
    "trainer_core": train_core,
  }
  if mode == "inline":
    out["validations"] = sum(1 for r in records if r.get("val_accuracy") is not None)
  else:
    out["evaluator_core"] = evaluator_core
    deadline = time.monotonic() + 900  # the evaluator finishes the last snapshots after the trainer
    while time.monotonic() < deadline and (workdir / "evaluator.lock").exists():
      time.sleep(2)
    path = workdir / "validation.jsonl"
    scored = (
      [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )
    out["validations"] = len(scored)
    out["validation_sec_mean"] = sum(r["val_sec"] for r in scored) / max(len(scored), 1)
  return out


def measure(
  config: str = "configs/paper_track.py",
  minutes: float = 8.0,
  every: int = 10,
  seeds: int = 2,
  train_core: int = 1,
  evaluator_core: int = 0,
  warm_minutes: float = 2.5,
  task_overrides=ONE_SHAPE,
  log=print,
) -> dict:
  """{"inline": {...}, "async": {...}, "speedup": async / inline updates per hour}."""
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  if len(cores) < 2:
    return {"skipped": f"needs two cores, this process may use {cores}"}
  base = pathlib.Path(tempfile.mkdtemp(prefix="bench_validation_"))
  result = {
    "config": config,
    "minutes": minutes,
    "every": every,
    "seeds": seeds,
    "task_shape": list(ONE_SHAPE),
  }
  cache = base / "jax_cache" if warm_minutes > 0 else None
  try:
    if warm_minutes > 0:  # compiles the unroll and the validation once, into a cache both runs share
      log(f"  warm-up: {warm_minutes} min (compiles)")
      _run(
        "inline",
        base / "warm",
        config,
        warm_minutes,
        2,
        seeds,
        train_core,
        evaluator_core,
        cache,
        task_overrides,
      )
    for mode in ("inline", "async"):
      log(f"  {mode}: {minutes} min of {config}, validation every {every} updates on {seeds} seeds")
      result[mode] = _run(
        mode, base / mode, config, minutes, every, seeds, train_core, evaluator_core, cache, task_overrides
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
