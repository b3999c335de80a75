"""Rates, compile seconds, FLOPs and memory of one config's rule and meta-gradient.

* rates: seconds per inner step (`apply_rule`, a k-step scan) and per meta-gradient
  (`meta_gradient`) of ahead-of-time compiled functions, so the timed calls never
  include compilation;
* compile seconds: the `compile()` call of `apply_rule` and of the first meta-gradient,
  with the persistent compilation cache switched off for those two (`cold_compile`), so
  they are cold figures whatever earlier runs cached. The scan makes compile time
  independent of k. Every other executable may come from the cache
  (`compile_cache_hits` counts where it did) and compiles in `compile_threads` threads;
* FLOPs: XLA's `cost_analysis()` of the same executables. XLA counts a while loop's body
  once, whatever the trip count (checked on a small scan, `loop_body_counted_once`), so
  the k-step executables give the FLOPs of one step directly. Cross-checked against
  `benchmarks.flops`; a meta-gradient step is `meta_grad_passes` times step + evaluation;
* fraction of peak: achieved FLOP rate over `benchmarks.device.matmul_peak`;
* memory: XLA's `memory_analysis()` (deterministic): argument + output + temp - alias
  bytes of an executable; memory against k with and without `jax.checkpoint` compiles
  `meta_gradient` only (`FAST_COMPILE`: same buffer assignment, cheaper codegen) and
  extends the measured ks to the reported ones (a scan's buffers are affine in k).

Meta-gradient timings at a k that was not compiled (to keep the benchmark short) carry
`"measured": false` and the method used (`extrapolate`).
"""

from __future__ import annotations

import time

import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.benchmarks import device, flops, xla
from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.learned_update import unroll

# Unroll lengths reported; which are measured (compiled and timed) is set per config.
REPORT_KS = (5, 20, 50)
QUICK_REPORT_KS = (2, 5)


def bench_config(
  cfg,
  shapes: dict,
  measure_ks=(5,),
  memory_ks=(),
  peak_gflops: float | None = None,
  counted_once: bool = True,
  compile_threads: int = 2,
  compiler_options=None,
  cold_compile: bool = True,
  log=print,
) -> dict:
  """Rates, compile seconds, FLOPs and memory of one config's rule at `shapes`.

  `compiler_options` apply to the timed executables (None: XLA's defaults). The first k
  of `measure_ks` gives the reported compile seconds (cold if `cold_compile`); the other
  measured ks and the memory-only executables compile together in threads afterwards.
  """
  measure_ks = tuple(sorted(set(int(k) for k in measure_ks)))
  memory_ks = tuple(sorted(set(int(k) for k in memory_ks)))
  cfg = shapes_lib.shaped_config(cfg, shapes)
  fns = unroll.make_unroll_fns(cfg)
  num_classes = shapes["num_classes"]
  units = (shapes["input_dim"],) + tuple(base_models.layer_widths(cfg.base_model))
  out = {
    "shapes": shapes_lib.describe(cfg, shapes),
    "compile_sec": {},
    "lower_sec": {},
    "compile_cache_hits": {},
    "memory": {},
    "meta_grad": {},
  }

  def record(name, compiled, sec, hits):
    out["compile_sec"][name], out["compile_cache_hits"][name] = sec, hits
    out["memory"][name] = xla.memory_of(compiled)

  # Rule only (one k-step scan), then the first meta-gradient: compiled alone, so their
  # compile seconds are this machine's, not shared with other compiles.
  k0 = measure_ks[0]
  inputs = {k: shapes_lib.inputs(cfg, shapes, k) for k in set(measure_ks) | set(memory_ks)}
  theta, state, batches = inputs[k0]
  lowered, out["lower_sec"]["apply_rule"] = xla.lower(fns.apply_rule, theta, state, batches["unlabelled"])
  with xla.persistent_cache_off(cold_compile):
    compiled, sec, hits = xla.compile_one(lowered, compiler_options)
  record("apply_rule", compiled, sec, hits)
  step_sec = xla.time_call(compiled, (theta, state, batches["unlabelled"]), min_calls=2, max_calls=3) / k0
  out["sec_per_inner_step"], out["inner_steps_per_sec"] = step_sec, 1.0 / step_sec
  xla_step = xla.flops_of(compiled) / (1 if counted_once else k0)
  log(f"  apply_rule k={k0}: {step_sec * 1e3:.1f} ms/inner step (compile {sec:.1f} s)")

  def lower_meta_grad(c, k):
    th, st, ba = inputs[k]
    fn = unroll.make_unroll_fns(c).meta_gradient
    return xla.lower(fn, th, st, ba, num_classes=num_classes)

  lowered, out["lower_sec"][f"meta_grad_k{k0}"] = lower_meta_grad(cfg, k0)
  with xla.persistent_cache_off(cold_compile):
    compiled, sec, hits = xla.compile_one(lowered, compiler_options)
  record(f"meta_grad_k{k0}", compiled, sec, hits)
  timed = {k0: compiled}
  xla_mg_step = xla.flops_of(compiled) / (1 if counted_once else k0)
  out["compile"] = {
    "apply_rule_sec": out["compile_sec"]["apply_rule"],
    "meta_grad_sec": sec,
    "k": k0,
    "cold": bool(cold_compile) or not (hits or out["compile_cache_hits"]["apply_rule"]),
  }
  log(f"  meta_gradient k={k0}: compiled in {sec:.1f} s")

  # Everything else compiles in threads: the other measured ks (timed, `compiler_options`)
  # and, for memory against k, meta_gradient with and without jax.checkpoint
  # (compile only, FAST_COMPILE).
  jobs, names = [], []
  for k in measure_ks[1:]:
    jobs.append((lower_meta_grad(cfg, k)[0], compiler_options))
    names.append(("timed", bool(cfg.rule.checkpoint_unroll), k))
  for checkpoint in (True, False):
    c = cfg.copy_and_resolve_references()
    c.rule.checkpoint_unroll = checkpoint
    for k in memory_ks:
      if checkpoint == bool(cfg.rule.checkpoint_unroll) and k in measure_ks:
        continue  # the timed executable has the same buffer assignment
      jobs.append((lower_meta_grad(c, k)[0], xla.FAST_COMPILE))
      names.append(("memory", checkpoint, k))
  if jobs:
    t = time.perf_counter()
    results = xla.compile_many(jobs, compile_threads)
    log(
      f"  {len(jobs)} more executables compiled in {time.perf_counter() - t:.0f} s "
      f"({compile_threads} threads)"
    )
  else:
    results = []
  memory_only, memory_hits = {}, 0
  for (kind, checkpoint, k), (compiled, sec, hits) in zip(names, results):
    if kind == "timed":
      record(f"meta_grad_k{k}", compiled, sec, hits)
      timed[k] = compiled
    else:
      memory_only[(checkpoint, k)] = xla.memory_of(compiled)["peak_bytes"]
      memory_hits += hits

  for k in measure_ks:
    sec = xla.time_call(timed[k], inputs[k], min_calls=1, max_calls=2, budget_sec=10.0)
    out["meta_grad"][str(k)] = {"sec": sec, "measured": True}
    log(f"  meta_gradient k={k}: {sec:.2f} s")

  if memory_ks:
    out["memory_vs_k"] = memory_vs_k(cfg, out["memory"], memory_only, memory_ks, measure_ks)
    out["memory_vs_k"]["compile_cache_hits"] = memory_hits

  # FLOPs: XLA against the formula (per step; a meta-gradient is k steps).
  step = flops.rule_step_flops(cfg.rule, shapes["batch"], units)
  evaluation = flops.evaluation_flops(
    cfg.meta_objective, units, num_classes, num_classes + shapes["num_regression"]
  )
  passes = flops.meta_grad_passes(cfg.rule)
  formula_mg_step = passes * (step["total"] + evaluation["total"])
  out["flops"] = {
    "xla_per_inner_step": xla_step,
    "formula_per_inner_step": step["total"],
    "ratio_inner_step": xla_step / step["total"],
    "xla_per_meta_grad_step": xla_mg_step,
    "formula_per_meta_grad_step": formula_mg_step,
    "ratio_meta_grad": xla_mg_step / formula_mg_step,
    "formula_passes_per_meta_grad_step": passes,
    "formula_inner_step_parts": step,
    "formula_evaluation_parts": evaluation,
    "h_network_share": step["compute_h"] / step["total"],
    "loop_body_counted_once": counted_once,
  }
  for k, v in out["meta_grad"].items():
    v["xla_flops"], v["formula_flops"] = xla_mg_step * int(k), formula_mg_step * int(k)
  out["gflops_per_sec_inner_step"] = xla_step / step_sec / 1e9
  kmax = measure_ks[-1]
  out["gflops_per_sec_meta_grad"] = xla_mg_step * kmax / out["meta_grad"][str(kmax)]["sec"] / 1e9
  if peak_gflops:
    out["fraction_of_peak_inner_step"] = out["gflops_per_sec_inner_step"] / peak_gflops
    out["fraction_of_peak"] = out["gflops_per_sec_meta_grad"] / peak_gflops
  out["peak_memory_bytes"] = max(m["peak_bytes"] or 0 for m in out["memory"].values())
  out["device_memory_stats"] = device.device_memory_stats()
  return out


def memory_vs_k(cfg, timed_memory: dict, memory_only: dict, memory_ks, measure_ks) -> dict:
  """Peak bytes of meta_gradient at each k with and without checkpoint, measured or affine."""
  result = {"checkpoint": {}, "no_checkpoint": {}, "measured_ks": list(memory_ks)}
  for checkpoint in (True, False):
    key = "checkpoint" if checkpoint else "no_checkpoint"
    for k in memory_ks:
      if checkpoint == bool(cfg.rule.checkpoint_unroll) and k in measure_ks:
        result[key][str(k)] = timed_memory[f"meta_grad_k{k}"]["peak_bytes"]
      else:
        result[key][str(k)] = memory_only[(checkpoint, k)]
  if len(memory_ks) >= 2:
    # A scan's buffers are a fixed part plus one slice per step (carries stacked for the
    # checkpointed backward pass, every residual without): affine in k.
    extra = [k for k in REPORT_KS if k not in memory_ks]
    for key in ("checkpoint", "no_checkpoint"):
      ks = np.array(memory_ks, float)
      ys = np.array([result[key][str(k)] for k in memory_ks], float)
      slope, intercept = np.polyfit(ks, ys, 1)
      result[f"{key}_bytes_per_step"] = float(slope)
      for k in extra:
        result[key][str(k)] = int(round(intercept + slope * k))
    result["extrapolated_ks"] = extra
  result["method"] = (
    "XLA memory_analysis of meta_gradient: argument + output + temp - alias bytes "
    "(memory-only executables at LLVM -O0, same buffer assignment); "
    "extrapolated_ks from the affine fit over measured_ks"
  )
  return result


def extrapolate(results: dict, report_ks) -> None:
  """Fills meta_grad timings for unmeasured k (marked measured=false) and the rates.

  Two or more measured k: least-squares line t = a + b k (a >= 0). One measured k: scaled
  by the growth t(k)/t(k0) of a config that measured several k, else proportional to k.
  """
  fits = {}
  for name, r in results.items():
    measured = sorted((int(k), v["sec"]) for k, v in r["meta_grad"].items() if v["measured"])
    if len(measured) >= 2:
      ks, ts = np.array([m[0] for m in measured], float), np.array([m[1] for m in measured])
      b, a = np.polyfit(ks, ts, 1)
      if a < 0:
        a, b = 0.0, float(np.sum(ks * ts) / np.sum(ks * ks))
      fits[name] = (float(a), float(b))
  for name, r in results.items():
    measured = sorted((int(k), v["sec"]) for k, v in r["meta_grad"].items() if v["measured"])
    for k in report_ks:
      if str(k) in r["meta_grad"]:
        continue
      if name in fits:
        a, b = fits[name]
        sec, method = a + b * k, f"linear fit t = a + b k over measured k {[m[0] for m in measured]}"
      elif fits:
        ref, (a, b) = next(iter(fits.items()))
        k0, t0 = measured[0]
        sec = t0 * (a + b * k) / (a + b * k0)
        method = f"t(k={k0}) x growth t(k)/t(k={k0}) measured on config '{ref}'"
      else:
        k0, t0 = measured[0]
        sec, method = t0 * k / k0, f"proportional to k from k={k0}"
      r["meta_grad"][str(k)] = {"sec": sec, "measured": False, "method": method}
    r["meta_grad"] = dict(sorted(r["meta_grad"].items(), key=lambda kv: int(kv[0])))
    r["meta_grads_per_sec"] = {k: 1.0 / v["sec"] for k, v in r["meta_grad"].items()}
    per_step = r["flops"]
    for k, v in r["meta_grad"].items():
      v["meta_grads_per_sec"] = 1.0 / v["sec"]
      v["inner_steps_per_sec"] = int(k) / v["sec"]
      v["xla_flops"] = per_step["xla_per_meta_grad_step"] * int(k)
      if "formula_per_meta_grad_step" in per_step:
        v["formula_flops"] = per_step["formula_per_meta_grad_step"] * int(k)
