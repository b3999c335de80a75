r"""The evaluation run: every method on every seed, scored along the inner loop (docs/method.md §6–7).

What each seed draws and builds (its base model, θ, baselines, unlabelled stream, support
set and test subset) and how a method is scored at a point: seed_setup.py. Every method is
fed the stream in chunks of `eval_every` steps (one compiled shape per chunk length) and
scored at steps 0, M, 2M, ..., N. How the seeds run, `cfg.evaluation.batch_seeds`:

  * "off": one after another (`evaluate_seed`), the reference;
  * "threads" (the default): `evaluate_seed` of several seeds at once, one thread per core.
    Every seed runs exactly the reference's computations, so the numbers are the same bit
    for bit. Why it pays: JAX releases the GIL while XLA computes, and one seed's rule
    step (a batch of 32 through a 4×128+32 network) keeps the two cores only partly busy
    (1.65 cores, 27 ms per step), two seeds at once keep both busy (18 ms per seed-step);
    one seed's NumPy readouts also overlap another's training;
  * "vmap": all seeds in lockstep, each method's computation vmapped over the seeds
    (batched.py; equal to the reference to float rounding). On this CPU it is *slower*
    than "off": the per-seed kernels are not overhead-bound here, and the rule's batched
    weight-change terms run 1.6x slower per seed (10 seeds: 34–42 ms per seed-step against
    27); the baselines and feature passes gain nothing either. Meant for accelerators,
    where one seed's kernels are tiny.
The measured speed-ups of each mode (and why "vmap" loses on a CPU) are in docs/performance.md.
With one seed every mode is "off". Seconds per method are wall time inside each seed, so
with "threads" they include waiting for the cores the other seeds use.
Aggregation over seeds: stats.py. `per_seed_info[seed]["num_labels"]` records, per readout,
how many labelled examples it was fitted on (per episode for the episodic protocol), and
per method what it reports about its own training (`diagnostics`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from meta_unsup_rules.base_models import baselines as bl
from meta_unsup_rules.evaluation import batched, protocols, stats
from meta_unsup_rules.evaluation import seeds as seed_setup

METHODS = ("learned",) + bl.BASELINES
BATCH_SEEDS = ("threads", "vmap", "off")
seed_keys = seed_setup.seed_keys  # callers (features.py, tests) read a seed's keys here


def eval_points(inner_steps: int, eval_every: int) -> list[int]:
  """0, M, 2M, ..., N (N always included)."""
  if inner_steps < 0 or eval_every < 1:
    raise ValueError(f"need inner_steps >= 0 and eval_every >= 1, got {inner_steps}, {eval_every}")
  points = list(range(0, inner_steps + 1, eval_every))
  if points[-1] != inner_steps:
    points.append(inner_steps)
  return points


def _cores() -> int:
  """The cores this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def evaluate_seed(
  task,
  cfg,
  seed: int,
  methods: Sequence[str],
  points: Sequence[int],
  theta_fn: Callable | None = None,
  log: Callable[[str], None] = lambda s: None,
  test_set=None,
) -> stats.SeedResult:
  """Runs every method on seed `seed` and scores it at every point."""
  ecfg = cfg.evaluation
  test_set = test_set if test_set is not None else task.test_set(int(ecfg.max_test))
  s = seed_setup.setup_seed(task, cfg, seed, methods, theta_fn, test_set)
  batch = int(cfg.unroll.inner_batch_size)
  done = 0
  for point in points:
    chunk = point - done
    unlabelled = task.unlabelled_batches(s.stream, chunk, batch) if chunk else None
    plan = seed_setup.readout_plan(task, cfg, s.data, seed, point)
    for m, runner in s.runners.items():
      t0 = time.time()
      if chunk:
        runner.advance(unlabelled)
      s.record(m, plan.score(runner.features))
      s.seconds[m] += time.time() - t0
    done = point
    log(s.log_line(point, protocols.readout_names(ecfg)))
  return s.result(ecfg)


@dataclasses.dataclass(frozen=True)
class EvaluationRun:
  """What `run_evaluation` runs: a task, a whole config (its `evaluation` and `baselines` sections
  give every protocol and baseline setting), the methods, the unlabelled steps N and the steps M
  between readouts, the seeds, and seed → θ for the learned method. An EvaluationSetup
  (evaluation/evaluation_setup.py) is one, with the command's θ argument and overrides."""

  task: Any
  cfg: Any
  methods: Sequence[str]
  inner_steps: int
  eval_every: int
  seeds: Sequence[int]
  theta_fn: Callable | None = None


def run_evaluation(run: EvaluationRun, log: Callable[[str], None] = lambda s: None) -> dict:
  """The whole protocol; returns a JSON-serialisable result (rows, per-seed info, timings).

  `log` gets one line per seed and evaluation point, in every mode (with "threads" from the
  seeds' threads, one call at a time).
  """
  task, cfg, methods, seeds, theta_fn = run.task, run.cfg, list(run.methods), list(run.seeds), run.theta_fn
  inner_steps, eval_every = int(run.inner_steps), int(run.eval_every)
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"unknown methods {unknown}; expected a subset of {METHODS}")
  protocol = cfg.evaluation.protocol
  protocols.get(protocol)  # ValueError naming the known ones
  points = eval_points(inner_steps, eval_every)
  test_set = task.test_set(int(cfg.evaluation.max_test))
  t0 = time.time()
  mode = cfg.evaluation.batch_seeds
  if mode not in BATCH_SEEDS:
    raise ValueError(f"unknown evaluation.batch_seeds {mode!r}; expected one of {BATCH_SEEDS}")
  lock = threading.Lock()

  def serial_log(message: str) -> None:  # seeds in threads call it concurrently
    with lock:
      log(message)

  one_seed = lambda s: evaluate_seed(task, cfg, s, methods, points, theta_fn, serial_log, test_set)
  if mode == "vmap" and len(seeds) > 1:
    seed_results = batched.evaluate_seeds(task, cfg, seeds, methods, points, theta_fn, log, test_set)
  elif mode == "threads" and len(seeds) > 1:
    with ThreadPoolExecutor(min(len(seeds), _cores())) as pool:
      seed_results = list(pool.map(one_seed, seeds))
  else:
    seed_results = [one_seed(s) for s in seeds]
  rows = stats.aggregate(seed_results, methods, points, protocol)
  seconds = {m: sum(sr.seconds[m] for sr in seed_results) for m in methods}
  return {
    "task": task.name,
    "inner_steps": int(inner_steps),
    "eval_every": int(eval_every),
    "points": points,
    "seeds": [int(s) for s in seeds],
    "methods": list(methods),
    "protocol": protocol,
    "readouts": list(protocols.readout_names(cfg.evaluation)),
    "num_test": int(len(test_set[1])),
    "rows": rows,
    "final": stats.final_summary(rows, methods, inner_steps),
    "seconds": {"total": time.time() - t0, "per_method": seconds},
    "per_seed_info": {str(sr.seed): sr.info for sr in seed_results},
    "config": json.loads(cfg.to_json_best_effort()),
  }
