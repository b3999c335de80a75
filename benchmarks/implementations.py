"""Old against new in one process: `rule.implementation` "reference" (today's numerics) vs "fused".

For each config (at its benchmark shapes) and each implementation: the cold compile seconds of
the meta-gradient at k and of `apply_rule` (the evaluation path), then the compiled calls
timed interleaved (reference, fused, reference, ...), so load that comes and goes on a shared
machine hits both alike; each figure is the best of the rounds. The headline is
meta-gradients per core-hour: 3600 / seconds per meta-gradient / cores this process may use
(`os.sched_getaffinity`; pin it with `taskset -c 0` for a one-core figure).
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.benchmarks import xla
from meta_unsup_rules.learned_update import rule, unroll


def _cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def compare(
  cfg,
  shapes: dict,
  k: int = 10,
  rounds: int = 3,
  implementations=rule.IMPLEMENTATIONS,
  compiler_options=None,
  log=print,
) -> dict:
  """{"implementations": {name: {...}}, "speedup": {...}} for `cfg` at `shapes` (module docstring)."""
  cores = _cores()
  num_classes = shapes["num_classes"]
  compiled = {}
  out = {"k": int(k), "cores": cores, "rounds": int(rounds), "implementations": {}}
  for name in implementations:
    c = shapes_lib.shaped_config(cfg, shapes)
    c.rule.implementation = name
    fns = unroll.make_unroll_fns(c)
    theta, state, batches = shapes_lib.inputs(c, shapes, k)
    r = out["implementations"].setdefault(name, {})
    lowered, _ = xla.lower(fns.meta_gradient, theta, state, batches, num_classes=num_classes)
    with xla.persistent_cache_off(True):
      mg, r["compile_meta_grad_sec"], _ = xla.compile_one(lowered, compiler_options)
    lowered, _ = xla.lower(fns.apply_rule, theta, state, batches["unlabelled"])
    with xla.persistent_cache_off(True):
      ar, r["compile_apply_rule_sec"], _ = xla.compile_one(lowered, compiler_options)
    compiled[name] = {
      "meta_grad": (mg, (theta, state, batches)),
      "apply_rule": (ar, (theta, state, batches["unlabelled"])),
    }
    for fn, args in compiled[name].values():
      jax.block_until_ready(fn(*args))  # warm
    log(
      f"  {name}: compiled meta-gradient (k={k}) in {r['compile_meta_grad_sec']:.1f} s, "
      f"apply_rule in {r['compile_apply_rule_sec']:.1f} s"
    )
  times = {name: {"meta_grad": [], "apply_rule": []} for name in implementations}
  for _ in range(rounds):
    for name in implementations:
      for part, (fn, args) in compiled[name].items():
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times[name][part].append(time.perf_counter() - t)
  for name in implementations:
    r = out["implementations"][name]
    mg, ar = min(times[name]["meta_grad"]), min(times[name]["apply_rule"])
    r.update(
      sec_per_meta_grad=mg,
      sec_per_meta_grad_rounds=times[name]["meta_grad"],
      meta_grads_per_sec=1.0 / mg,
      meta_grads_per_core_hour=3600.0 / mg / cores,
      sec_per_inner_step=ar / k,
      sec_per_inner_step_rounds=[t / k for t in times[name]["apply_rule"]],
      inner_steps_per_sec=k / ar,
    )
    log(
      f"  {name}: {mg:.3f} s per meta-gradient (median {np.median(times[name]['meta_grad']):.3f}), "
      f"{r['meta_grads_per_core_hour']:.0f} per core-hour; {ar / k * 1e3:.1f} ms per inner step"
    )
  ref, new = out["implementations"].get("reference"), out["implementations"].get("fused")
  if ref and new:
    out["speedup"] = {
      "meta_grad": ref["sec_per_meta_grad"] / new["sec_per_meta_grad"],
      "inner_step": ref["sec_per_inner_step"] / new["sec_per_inner_step"],
      "compile_meta_grad": new["compile_meta_grad_sec"] / ref["compile_meta_grad_sec"],
    }
    log(
      f"  fused / reference: meta-gradient x{out['speedup']['meta_grad']:.2f}, "
      f"inner step x{out['speedup']['inner_step']:.2f}, "
      f"compile time x{out['speedup']['compile_meta_grad']:.2f}"
    )
  return out
