"""Meta-gradients per second and per core-hour with N tasks per compiled call (`workers.tasks_per_call`).

For each N: N base models of the config's benchmark shapes, each with its own synthetic batches,
one vmapped truncated-backprop meta-gradient call (`unroll.meta_gradient_many`; N = 1 is the plain
`meta_gradient` every worker runs today); the calls of all N are timed interleaved over the rounds,
so load that comes and goes hits each alike, and each figure is the best round. On an accelerator
`largest=True` keeps doubling N past the list until the device runs out of memory (or `max_n`).
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.distributed import gradient_estimators
from meta_unsup_rules.learned_update import unroll


def _cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def _call(cfg, shapes: dict, n: int, k: int):
  """(the compiled call for n tasks, its arguments)."""
  fns = unroll.make_unroll_fns(cfg)
  inputs = [shapes_lib.inputs(cfg, shapes, k, seed=i) for i in range(n)]
  theta = inputs[0][0]
  if n == 1:
    _, state, batches = inputs[0]
    return (lambda: fns.meta_gradient(theta, state, batches, num_classes=shapes["num_classes"])), None
  states = jax.device_put(gradient_estimators.stack_trees([x[1] for x in inputs]))
  batches = jax.device_put(gradient_estimators.stack_trees([x[2] for x in inputs]))
  return (lambda: fns.meta_gradient_many(theta, states, batches, num_classes=shapes["num_classes"])), None


def measure(
  cfg,
  shapes: dict,
  ns=(1, 2, 4),
  k: int = 10,
  rounds: int = 3,
  largest: bool = False,
  max_n: int = 4096,
  log=print,
) -> dict:
  """{"per_n": {N: {...}}, "best_n", ...}: seconds per call, meta-gradients per second and per core-hour."""
  c = shapes_lib.shaped_config(cfg, shapes)
  cores = _cores()
  out = {"k": int(k), "cores": cores, "rounds": int(rounds), "device": jax.default_backend(), "per_n": {}}
  calls = {}
  ns = list(ns)
  if largest:
    n = max(ns)
    while n * 2 <= max_n:
      ns.append(n * 2)
      n *= 2
  for n in ns:
    try:
      fn, _ = _call(c, shapes, n, k)
      t = time.perf_counter()
      jax.block_until_ready(fn())  # compile and warm
      out["per_n"][str(n)] = {"compile_and_first_sec": time.perf_counter() - t}
      calls[n] = fn
      log(f"  N={n}: compiled and ran once in {out['per_n'][str(n)]['compile_and_first_sec']:.1f} s")
    except Exception as e:  # pylint: disable=broad-except  (out of device memory ends the doubling)
      if not largest or n == ns[0]:
        raise
      out["largest_fitting_n"] = max(calls)
      out["stopped_at"] = {"n": n, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
      log(f"  N={n}: {out['stopped_at']['error']} (the largest N that fits: {max(calls)})")
      break
  times = {n: [] for n in calls}
  for _ in range(rounds):
    for n, fn in calls.items():
      t = time.perf_counter()
      jax.block_until_ready(fn())
      times[n].append(time.perf_counter() - t)
  base = None
  for n in calls:
    best = min(times[n])
    per_sec = n / best
    base = per_sec if base is None else base
    out["per_n"][str(n)].update(
      sec_per_call=best,
      sec_per_call_rounds=times[n],
      meta_grads_per_sec=per_sec,
      meta_grads_per_core_hour=3600.0 * per_sec / cores,
      ratio_to_n1=per_sec / base,
    )
    log(
      f"  N={n}: {best:.3f} s per call (median {np.median(times[n]):.3f}), {per_sec:.2f} meta-gradients/s, "
      f"x{per_sec / base:.2f} of N={min(calls)} per meta-gradient"
    )
  out["best_n"] = int(max(calls, key=lambda n: n / min(times[n])))
  out["shapes"] = shapes_lib.describe(c, shapes)
  return out
