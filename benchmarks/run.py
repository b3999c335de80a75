"""The whole benchmark in one call (`scripts.benchmark`): which configs, in which order.

Order matters: Ray first, before this process runs any JAX computation (see
`benchmarks.ray_scaling`), then the matmul peak, each config, the scaling table and the
h network precision study, the op profile and the evaluation speed. `section_sec` gives the
wall seconds of each part.
"""

from __future__ import annotations

import time

import jax

from meta_unsup_rules.benchmarks import (
  device,
  evaluation_speed,
  implementations,
  meta_gradient,
  op_profile,
  precision,
  ray_scaling,
  scaling,
  tasks_per_call,
  validation_modes,
  xla,
)
from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.util import jax_setup

# shapes: "tiny_mnist" = 196 inputs and the config's evaluated base model (paper);
# "meta_train" = the largest task of the config's meta-training distribution.
# Paper: one meta-gradient at k=5 takes ~10 s on 2 cores, so its k=20/50 are
# extrapolated with the growth in k measured on `local` (same code, smaller h network).
CONFIG_SPECS = {
  "paper": dict(module="configs.paper", shapes="tiny_mnist", measure_ks=(5,), memory_ks=()),
  "local": dict(module="configs.local", shapes="meta_train", measure_ks=(5, 20), memory_ks=(5, 20)),
}
QUICK_SPECS = {
  "tiny": dict(module="configs.tiny", shapes="meta_train", measure_ks=(2,), memory_ks=(2,)),
}
# Old against new (rule.implementation reference vs fused): k and interleaved rounds per config.
# Paper shapes at k = 2 keep its four compiles to a few minutes; time is linear in k. Four rounds there:
# with two, its ratio moved between x1.00 and x1.14 across runs of one session.
COMPARE_SPECS = {"paper": dict(k=2, rounds=4), "local": dict(k=10, rounds=3), "tiny": dict(k=2, rounds=1)}
# The config whose shapes the scaling table varies (and whose rule the Ray workers run).
SCALING_CONFIG, QUICK_SCALING_CONFIG = "local", "tiny"


def meta_grads_per_core_hour(ray_result: dict) -> dict | None:
  """The end-to-end figure of meta-training: one pinned actor's meta-gradients in an hour.

  Measured on the Ray pool (the meta-training path: task sampling, data, the unroll at the
  config's k, transfer), one actor on one core, so it is per core by construction.
  """
  one = ray_result.get("workers", {}).get("1")
  if not one or not one.get("meta_grads_per_sec"):
    return None
  task = ray_result["task"]
  return {
    "value": 3600.0 * one["meta_grads_per_sec"],
    "k": task["k"],
    "layer_widths": task["layer_widths"],
    "inner_batch_size": task["inner_batch_size"],
  }


def run_benchmark(
  config_names=("paper", "local"),
  quick: bool = False,
  skip_ray: bool = False,
  compile_cache: bool = True,
  cold_compile: bool = True,
  compile_threads: int = 2,
  compare_implementations: bool = True,
  only_compare: bool = False,
  only: tuple = (),
  log=print,
) -> dict:
  """The whole benchmark: Ray first (before any JAX), then peak, configs and scaling.

  quick: configs/tiny.py shapes, every executable at FAST_COMPILE (tests; the rates then
  say nothing about real speed). compile_cache: the persistent cache for executables
  whose compile time is not reported; cold_compile: the reported ones bypass it.
  compare_implementations: the old-vs-new section (`benchmarks.implementations`);
  only_compare: that section alone (no Ray, configs, scaling, profile or evaluation).
  """
  t_start = time.perf_counter()
  specs = dict(QUICK_SPECS) if quick else {n: CONFIG_SPECS[n] for n in config_names}
  scaled = QUICK_SCALING_CONFIG if quick else SCALING_CONFIG
  result = {"quick": bool(quick), "configs": {}, "section_sec": {}}
  only = tuple(only) or (("compare",) if only_compare else ())
  if only:  # the named sections alone (ONLY_SECTIONS)
    jax_setup.configure_jax()
    result["device"] = device.device_info()
    for name in only:
      ONLY_SECTIONS[name](result, specs, quick, log)
    result["wall_sec"] = time.perf_counter() - t_start
    return result
  if skip_ray:
    result["ray"] = {"skipped": True}
  else:
    log("Ray scaling (the config's rule on one fixed task shape):")
    t = time.perf_counter()
    module = QUICK_SPECS[scaled]["module"] if quick else CONFIG_SPECS[scaled]["module"]
    result["ray"] = ray_scaling.ray_scaling(
      ray_scaling.ray_task_config(module),
      measure_sec=4.0 if quick else 15.0,
      min_results=3 if quick else 4,
      log=log,
    )
    result["section_sec"]["ray"] = time.perf_counter() - t
  result["ray_scaling_2_over_1"] = result["ray"].get("ray_scaling_2_over_1")
  result["meta_grads_per_core_hour"] = meta_grads_per_core_hour(result["ray"])
  result["learner_share"] = result["ray"].get("learner_share")

  if compile_cache:
    jax_setup.configure_jax()
  else:
    jax.config.update("jax_enable_compilation_cache", False)
  xla.CACHE_HITS.register()
  result["compile_cache"] = bool(jax.config.jax_enable_compilation_cache)
  result["cold_compile"] = bool(cold_compile)
  result["device"] = device.device_info()
  peak = device.matmul_peak(
    1024 if quick and result["device"]["platform"] == "cpu" else None, repeats=3 if quick else 5
  )
  result["matmul_peak"] = peak
  result["matmul_peak_gflops"] = peak["gflops_per_sec"]
  result["matmul_peak_bf16_gflops"] = peak["bfloat16_f32_accumulate_gflops_per_sec"]
  log(
    f"matmul peak: {peak['gflops_per_sec']:.1f} GFLOP/s (float32 {peak['n']}^2, best of {peak['repeats']}); "
    f"bfloat16 operands, float32 accumulation: {result['matmul_peak_bf16_gflops']:.1f} GFLOP/s"
  )
  counted_once = xla.loop_body_counted_once()
  options = xla.FAST_COMPILE if quick else None
  result["compiler_options"] = options or {}

  shapes = {}
  for name, spec in specs.items():
    t = time.perf_counter()
    cfg = shapes_lib.load_config(spec["module"])
    shapes[name] = shapes_lib.bench_shapes(cfg, spec["shapes"])
    log(
      f"config {name} ({spec['module']}, input {shapes[name]['input_dim']}, "
      f"widths {shapes[name]['hidden_widths']}, batch {shapes[name]['batch']}):"
    )
    result["configs"][name] = meta_gradient.bench_config(
      cfg,
      shapes[name],
      spec["measure_ks"],
      spec["memory_ks"],
      peak["gflops_per_sec"],
      counted_once,
      compile_threads,
      options,
      cold_compile,
      log,
    )
    result["section_sec"][name] = time.perf_counter() - t
  meta_gradient.extrapolate(
    result["configs"], meta_gradient.QUICK_REPORT_KS if quick else meta_gradient.REPORT_KS
  )

  if compare_implementations:
    compare_section(result, specs, quick, log)
  tasks_per_call_section(result, specs, quick, log)

  log("scaling of time per inner step:")
  t = time.perf_counter()
  spec = QUICK_SPECS[scaled] if quick else CONFIG_SPECS[scaled]
  base_cfg = shapes_lib.load_config(spec["module"])
  base_shapes = shapes.get(scaled) or shapes_lib.bench_shapes(base_cfg, spec["shapes"])
  known = {}
  if scaled in result["configs"]:
    r = result["configs"][scaled]
    key = (base_shapes["batch"], base_shapes["hidden_widths"][0], base_shapes["input_dim"])
    if len(set(base_shapes["hidden_widths"])) == 1:
      known[key] = {
        "sec_per_inner_step": r["sec_per_inner_step"],
        "xla_flops": r["flops"]["xla_per_inner_step"],
      }
  result["scaling"] = scaling.scaling_table(
    base_cfg,
    base_shapes,
    k=spec["measure_ks"][0],
    quick=quick,
    known=known,
    compile_threads=compile_threads,
    compiler_options=options,
    log=log,
  )
  result["section_sec"]["scaling"] = time.perf_counter() - t

  log(f"h network precision ({scaled} shapes):")
  t = time.perf_counter()
  result["h_dtype"] = precision.h_dtype_study(
    base_cfg,
    base_shapes,
    k=spec["measure_ks"][0],
    compiler_options=options,
    compile_threads=compile_threads,
    log=log,
  )
  low = result["h_dtype"]["dtypes"]["bfloat16"]
  result["bfloat16_h"] = {
    k: low[k] for k in ("speedup_inner_step", "speedup_meta_grad", "grad_cosine_to_float32", "grad_rel_error")
  }
  result["section_sec"]["h_dtype"] = time.perf_counter() - t

  log(f"op profile of the meta-gradient ({scaled} shapes):")
  t = time.perf_counter()
  result["op_profile"] = op_profile.meta_gradient_profile(
    base_cfg, base_shapes, k=spec["measure_ks"][0], compiler_options=options
  )
  result["section_sec"]["op_profile"] = time.perf_counter() - t

  log("evaluation speed (each method alone, scripts.evaluate's path):")
  t = time.perf_counter()
  eval_cfg = shapes_lib.load_config(QUICK_SPECS["tiny"]["module"] if quick else "configs.local")
  result["evaluation_speed"] = evaluation_speed.evaluation_speed(eval_cfg, quick=quick, log=log)
  result["section_sec"]["evaluation_speed"] = time.perf_counter() - t

  result["fraction_of_peak"] = {n: r.get("fraction_of_peak") for n, r in result["configs"].items()}
  result["compile_sec"] = {n: r["compile"] for n, r in result["configs"].items()}
  result["peak_memory_bytes"] = {n: r["peak_memory_bytes"] for n, r in result["configs"].items()}
  result["max_rss_bytes"] = device.max_rss_bytes()
  result["wall_sec"] = time.perf_counter() - t_start
  return result


def compare_section(result: dict, specs: dict, quick: bool, log=print) -> None:
  """result["implementations"]: reference vs fused per config, and the headline ratios."""
  t = time.perf_counter()
  result["implementations"] = {}
  for name, spec in specs.items():
    log(f"old vs new, rule.implementation reference vs fused ({name}):")
    cfg = shapes_lib.load_config(spec["module"])
    result["implementations"][name] = implementations.compare(
      cfg,
      shapes_lib.bench_shapes(cfg, spec["shapes"]),
      compiler_options=xla.FAST_COMPILE if quick else None,
      log=log,
      **COMPARE_SPECS[name],
    )
  result["meta_grads_per_core_hour_by_implementation"] = {
    name: {impl: v["meta_grads_per_core_hour"] for impl, v in r["implementations"].items()}
    for name, r in result["implementations"].items()
  }
  result["fused_speedup"] = {n: r.get("speedup") for n, r in result["implementations"].items()}
  result["section_sec"]["implementations"] = time.perf_counter() - t


def tasks_per_call_section(result: dict, specs: dict, quick: bool, log=print) -> None:
  """result["tasks_per_call"]: meta-gradients per core-hour at N = 1, 2, 4 tasks per call (local
  shapes, k = 10; tiny at k = 2 with --quick)."""
  del specs
  t = time.perf_counter()
  name = QUICK_SCALING_CONFIG if quick else SCALING_CONFIG
  spec = (QUICK_SPECS if quick else CONFIG_SPECS)[name]
  cfg = shapes_lib.load_config(spec["module"])
  log(f"tasks per compiled call ({name} shapes):")
  result["tasks_per_call"] = tasks_per_call.measure(
    cfg,
    shapes_lib.bench_shapes(cfg, spec["shapes"]),
    ns=(1, 2, 4),
    k=2 if quick else 10,
    rounds=1 if quick else 3,
    log=log,
  )
  result["section_sec"]["tasks_per_call"] = time.perf_counter() - t


def validation_modes_section(result: dict, specs: dict, quick: bool, log=print) -> None:
  """result["validation_modes"]: updates per hour of a paper-track-like run, inline vs async."""
  del specs
  t = time.perf_counter()
  log("inline against asynchronous validation (two short meta-training runs):")
  if quick:
    result["validation_modes"] = validation_modes.measure(
      config="configs/tiny.py", minutes=1.0, every=2, seeds=2, warm_minutes=0.0, task_overrides=(), log=log
    )
  else:
    result["validation_modes"] = validation_modes.measure(log=log)
  result["section_sec"]["validation_modes"] = time.perf_counter() - t


def tasks_per_call_device_section(result: dict, specs: dict, quick: bool, log=print) -> None:
  """result["tasks_per_call"] on an accelerator: N = 1, 8, 64, then doubling to the largest N that
  fits in its memory (scripts/gpu_check.sh)."""
  del specs
  t = time.perf_counter()
  name = QUICK_SCALING_CONFIG if quick else SCALING_CONFIG
  spec = (QUICK_SPECS if quick else CONFIG_SPECS)[name]
  cfg = shapes_lib.load_config(spec["module"])
  log(f"tasks per compiled call on {jax.default_backend()} ({name} shapes):")
  result["tasks_per_call"] = tasks_per_call.measure(
    cfg,
    shapes_lib.bench_shapes(cfg, spec["shapes"]),
    ns=(1, 8, 64),
    k=2 if quick else 10,
    rounds=1 if quick else 3,
    largest=True,
    max_n=64 if quick else 4096,
    log=log,
  )
  result["section_sec"]["tasks_per_call"] = time.perf_counter() - t


# Sections `--only` runs on their own (after the device facts).
ONLY_SECTIONS = {
  "compare": compare_section,
  "tasks_per_call": tasks_per_call_section,
  "tasks_per_call_device": tasks_per_call_device_section,
  "validation_modes": validation_modes_section,
}
