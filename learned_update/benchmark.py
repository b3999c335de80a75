"""Throughput, FLOPs, memory and Ray scaling of the learned rule (issue 6; `scripts.benchmark`).

Every figure is measured in the calling process on `jax.devices()[0]`, so the same code
reports the same quantities on a CPU or a GPU:

* shapes: `paper` runs configs/paper.py at Tiny-MNIST shapes (196 inputs, its evaluated
  base model 4x128+32, inner batch 128); `local` runs configs/local.py at the largest task
  of its own meta-training distribution (`task.image_size`, `task.depth_max` hidden layers
  of `task.width_max`, its inner batch). Targets have the task's regression columns;
* rates: seconds per inner step (`apply_rule`, a k-step scan) and per meta-gradient
  (`meta_gradient`) of ahead-of-time compiled functions (`jit(f).lower(...).compile()`),
  so the timed calls never include compilation;
* compile seconds: the `compile()` call of `apply_rule` and of the first meta-gradient,
  with the persistent compilation cache switched off for those two (`cold_compile`), so
  they are cold figures whatever earlier runs cached. The scan makes compile time
  independent of k. Every other executable may come from the cache
  (`compile_cache_hits` counts where it did) and compiles in `compile_threads` threads;
* FLOPs: XLA's `cost_analysis()` of the same executables. XLA counts a while loop's body
  once, whatever the trip count (checked on a small scan, `loop_body_counted_once`), so
  the k-step executables give the FLOPs of one step directly. Cross-checked against
  `rule_step_flops` (every matmul of one inner step, by part; the h network's convolutions
  dominate) and `evaluation_flops`; a meta-gradient step is `meta_grad_passes` (4 under
  `jax.checkpoint`: forward, recomputed forward, 2 backward) times step + evaluation;
* fraction of peak: achieved FLOP rate over the float32 matmul rate measured in the same
  run (`matmul_peak`, best of several calls, JAX's default precision like the rule);
* memory: XLA's `memory_analysis()` (deterministic): argument + output + temp - alias
  bytes of an executable; memory against k with and without `jax.checkpoint` compiles
  `meta_gradient` only (`FAST_COMPILE`: same buffer assignment, cheaper codegen) and
  extends the measured ks to the reported ones (a scan's buffers are affine in k).
  `jax.devices()[0].memory_stats()` is added where the backend has it (GPU), and the
  process's peak resident set size (`max_rss_bytes`);
* scaling: seconds per inner step of `apply_rule` at the local shapes with the inner batch,
  the hidden width and the input size doubled (784 inputs) one at a time;
* h network precision (`h_dtype_study`): the rule and a meta-gradient with `rule.h_dtype`
  float32 and bfloat16 on the same θ, state and batches at the scaling config's shapes:
  speed ratios, and the bfloat16 meta-gradient's cosine to the float32 one, set against
  the cosine between float32 meta-gradients of two different batch streams;
* Ray: meta-gradients per second of `RayPool` with 1 and then 2 pinned actors after each
  actor's first result (which includes its compilation) is discarded, and the share of
  wall time the driver spends in `Learner.apply`. Ray must start before this process
  runs any JAX: `run_benchmark` calls `start_ray` first.

Meta-gradient timings at a k that was not compiled (to keep the benchmark short) carry
`"measured": false` and the method used; extrapolated memory figures are listed in
`memory_vs_k.extrapolated_ks`. `section_sec` gives the wall seconds of each part.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import os
import platform
import threading
import time

import numpy as np

# Unroll lengths reported; which are measured (compiled and timed) is set per config.
REPORT_KS = (5, 20, 50)
QUICK_REPORT_KS = (2, 5)
TINY_MNIST_INPUT_DIM = 196  # 14 x 14

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
# The config whose shapes the scaling table varies (and whose rule the Ray workers run).
SCALING_CONFIG, QUICK_SCALING_CONFIG = "local", "tiny"
RAY_WORKER_COUNTS = (1, 2)

# LLVM -O0: compiles ~2.3x faster. XLA's HLO passes and buffer assignment do not depend on
# it (memory_analysis and cost_analysis came out identical for the tiny and local
# meta-gradient), only the generated code's speed (~2x slower): used for compile-only
# memory figures, and for everything in --quick mode (tests), where speed is not the point.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


# ------------------------------------------------------------------ helpers


class _CacheHits:
  """Counts persistent-compilation-cache hits (JAX monitoring events)."""

  def __init__(self):
    self.count = 0
    self._lock = threading.Lock()
    self._registered = False

  def register(self):
    if self._registered:
      return
    import jax
    jax.monitoring.register_event_listener(self._on_event)
    self._registered = True

  def _on_event(self, event, **kwargs):
    del kwargs
    if event == "/jax/compilation_cache/cache_hits":
      with self._lock:
        self.count += 1


_CACHE_HITS = _CacheHits()


def load_config(module: str):
  return importlib.import_module(module).get_config()


def device_info() -> dict:
  import jax
  import jaxlib
  dev = jax.devices()[0]
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"platform": dev.platform, "device_kind": dev.device_kind, "num_devices": jax.device_count(),
          "cpu_cores": cores, "machine": platform.machine(), "jax": jax.__version__,
          "jaxlib": jaxlib.__version__,
          "memory_stats_available": _device_memory_stats() is not None}


def _device_memory_stats() -> dict | None:
  import jax
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    return None
  return dict(stats) if stats else None


def max_rss_bytes() -> int | None:
  try:
    import resource
  except ImportError:  # not on POSIX
    return None
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(rss if platform.system() == "Darwin" else rss * 1024)  # Linux reports KiB


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per computation
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", 0.0))


def memory_of(compiled) -> dict:
  """XLA's buffer assignment of an executable: bytes, and the peak they add up to."""
  m = compiled.memory_analysis()
  if m is None:
    return {"peak_bytes": None}
  out = {f"{name}_bytes": int(getattr(m, f"{name}_size_in_bytes", 0))
         for name in ("argument", "output", "alias", "temp", "generated_code")}
  out["peak_bytes"] = (out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"]
                       - out["alias_bytes"])
  return out


def _lower(jitted, *args, **static):
  t = time.perf_counter()
  lowered = jitted.lower(*args, **static)
  return lowered, time.perf_counter() - t


@contextlib.contextmanager
def persistent_cache_off(enabled: bool = True):
  """Compiles inside bypass the persistent cache (neither read nor written).

  JAX decides once whether the cache is used; `reset_cache` makes it decide again.
  Not thread-safe: only around compiles that run alone.
  """
  import jax
  if not enabled or not jax.config.jax_enable_compilation_cache:
    yield
    return
  from jax.experimental.compilation_cache import compilation_cache as cc
  jax.config.update("jax_enable_compilation_cache", False)
  cc.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", True)
    cc.reset_cache()


def _compile(lowered, options: dict | None = None) -> tuple:
  """(executable, compile seconds, persistent-cache hits during the call)."""
  hits = _CACHE_HITS.count
  t = time.perf_counter()
  compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
  return compiled, time.perf_counter() - t, _CACHE_HITS.count - hits


def compile_many(jobs: list, max_workers: int = 2) -> list:
  """[(lowered, options)] -> [(executable, seconds, hits)], in threads (XLA releases the GIL).

  For executables whose compile time is not reported: concurrent compiles share the cores.
  """
  if max_workers <= 1 or len(jobs) <= 1:
    return [_compile(lo, opts) for lo, opts in jobs]
  with concurrent.futures.ThreadPoolExecutor(max_workers) as pool:
    return list(pool.map(lambda job: _compile(*job), jobs))


def time_call(fn, args, min_calls: int = 1, max_calls: int = 3, budget_sec: float = 10.0) -> float:
  """Best wall seconds of `fn(*args)` over min_calls..max_calls calls (stop after budget_sec)."""
  import jax
  best, spent, calls = float("inf"), 0.0, 0
  while calls < min_calls or (calls < max_calls and spent < budget_sec):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    dt = time.perf_counter() - t
    best, spent, calls = min(best, dt), spent + dt, calls + 1
  return best


def loop_body_counted_once() -> bool:
  """Whether XLA's cost analysis counts a scan's body once regardless of its length."""
  import jax
  import jax.numpy as jnp

  def flops(n):
    def f(x):
      return jax.lax.scan(lambda c, _: (c @ x, None), x, None, length=n)[0]
    return _flops(jax.jit(f).lower(jnp.ones((32, 32), jnp.float32)).compile())

  one, four = flops(1), flops(4)
  return bool(four < 2.0 * one)


def matmul_peak(n: int | None = None, repeats: int = 5) -> dict:
  """Best float32 n x n matmul rate of this device (the reference for fraction_of_peak).

  Default precision, like the rule's own matmuls (on GPUs with TF32 that is what both
  use). n: 2048 on CPU (~0.1-0.5 s a call on 2 cores), 8192 on accelerators (smaller
  matmuls are launch-bound there).
  """
  import jax
  import jax.numpy as jnp
  platform_name = jax.devices()[0].platform
  n = n or (2048 if platform_name == "cpu" else 8192)
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  compiled = jax.jit(jnp.matmul).lower(a, b).compile()
  jax.block_until_ready(compiled(a, b))
  best = time_call(compiled, (a, b), min_calls=repeats, max_calls=repeats)
  flops = 2.0 * n ** 3
  # For the bfloat16 study: bf16 operands, float32 accumulation (AMX / tensor cores where present).
  a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
  low = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32)).lower(a16, b16).compile()
  jax.block_until_ready(low(a16, b16))
  best16 = time_call(low, (a16, b16), min_calls=repeats, max_calls=repeats)
  return {"n": n, "dtype": "float32", "precision": "default", "repeats": repeats, "best_sec": best,
          "flops": flops, "xla_flops": _flops(compiled), "gflops_per_sec": flops / best / 1e9,
          "bfloat16_f32_accumulate_gflops_per_sec": flops / best16 / 1e9}


# ------------------------------------------------------------------ FLOPs formulas


def h_network_flops(rule_cfg, batch: int, layer_units) -> float:
  """FLOPs of the h network's convolutions in one inner step (the rule's dominant term).

  `layer_units`: units of every layer the rule visits, the input pixels included
  (input_dim, hidden widths..., top width). Each conv maps c_in → c_out channels with a
  `kernel_size` kernel at every (unit, example) position.
  """
  from learned_update import rule
  k, hs = int(rule_cfg.kernel_size), int(rule_cfg.compute_h_size)
  c0 = rule.NUM_STAT_CHANNELS + 1 + rule.NUM_UNIT_FEATURES + int(rule_cfg.delta_dim)
  per_block = lambda c_in: k * c_in * hs + 2 * k * hs * hs   # batch-axis conv + 2 unit-axis convs
  macs = per_block(c0) + int(rule_cfg.compute_h_layers) * per_block(hs)
  return 2.0 * batch * float(sum(layer_units)) * macs


def rule_step_flops(rule_cfg, batch: int, layer_units) -> dict:
  """Matmul FLOPs of one inner step (`rule.inner_step`), by part, and their total.

  Elementwise work (normalisations, activations) is left out: XLA counts it too, so
  XLA / formula is a little above 1 (~1.1 at the local shapes, ~1.3 at tiny ones).
  """
  from learned_update import rule
  r = rule_cfg
  u = [int(x) for x in layer_units]
  pairs = list(zip(u[:-1], u[1:]))                 # (n_in, n_out) of every weight matrix
  b, top = int(batch), u[-1]
  hs, c, dd = int(r.compute_h_size), int(r.num_grad_channels), int(r.delta_dim)
  td, k = int(r.top_delta_size), int(r.kernel_size)
  sides = 1 if r.identical_updates else 2          # V gets W's update, or its own readouts
  macs = {
      "base_forward": b * sum(n * m for n, m in pairs),
      # conv_in (1 -> td), 2 unit-mixing convs (n_top -> n_top over td rows), layers, out.
      "top_delta": top * b * (int(r.top_delta_kernel) * td + int(r.top_delta_layers) * k * td * td
                              + k * td * dd) + 2 * td * b * k * top * top,
      "compute_h": h_network_flops(r, b, u) / 2,
      # to_delta (h -> delta) and the top-down V @ delta of every layer but the input.
      "delta": sum(m * b * hs * dd + n * m * b * dd for n, m in pairs),
      "readouts": sides * sum(u) * b * hs * len(rule.READOUT_NAMES) * c + sum(u[1:]) * b * hs,
      # per W [n, m]: corr (B m^2), w_hat @ corr, hebb, 3 low-rank terms, 5 lateral
      # products (3 upper m x m, 2 lower n x n) and their application to w, the merge.
      "weight_change": sides * sum(
          b * m * m + n * m * m + b * n * m + 3 * n * m * b * c + (3 * m * m + 2 * n * n) * b * c
          + 3 * n * m * m + 2 * n * n * m + len(rule.WEIGHT_TERMS) * n * m for n, m in pairs),
  }
  out = {name: 2.0 * v for name, v in macs.items()}
  out["total"] = sum(out.values())
  return out


def evaluation_flops(mo_cfg, layer_units, num_classes: int, num_targets: int) -> dict:
  """Matmul FLOPs of the meta-objective at one state: features of the n (a, b) pairs, ridge."""
  u = [int(x) for x in layer_units]
  n, per_half = int(mo_cfg.num_evaluations), int(num_classes) * int(mo_cfg.samples_per_class)
  f, t = u[-1] + 1, int(num_targets)                # features + the constant column
  out = {"features": 2.0 * n * 2 * per_half * sum(a * b for a, b in zip(u[:-1], u[1:])),
         # gram, A^T y, predictions, Cholesky (f^3 / 3) and its two triangular solves.
         "ridge": 2.0 * n * (per_half * f * f + 2 * per_half * f * t + f ** 3 / 3 + 2 * f * f * t)}
  out["total"] = out["features"] + out["ridge"]
  return out


def meta_grad_passes(rule_cfg) -> int:
  """Forward-equivalent passes per meta-gradient step: fwd + 2 bwd (+ 1 recomputed fwd)."""
  return 4 if rule_cfg.checkpoint_unroll else 3


# ------------------------------------------------------------------ shapes


def bench_shapes(cfg, kind: str) -> dict:
  """The shapes a config is benchmarked at (see the module docstring)."""
  from tasks import image_ops
  t = cfg.task
  if kind == "tiny_mnist":
    input_dim, hidden = TINY_MNIST_INPUT_DIM, tuple(int(w) for w in cfg.base_model.hidden_widths)
    source = "Tiny MNIST (14x14) and the evaluated base model of the config"
  elif kind == "meta_train":
    channels = 1 if t.greyscale else 3
    input_dim = int(t.image_size) ** 2 * channels
    hidden = (int(t.width_max),) * int(t.depth_max)
    source = "largest task of the config's meta-training distribution (depth_max x width_max)"
  else:
    raise ValueError(f"unknown shapes {kind!r}; expected 'tiny_mnist' or 'meta_train'")
  return {"input_dim": input_dim, "hidden_widths": hidden, "batch": int(cfg.unroll.inner_batch_size),
          "num_classes": int(max(t.num_classes_choices)),
          "num_regression": image_ops.NUM_AUGMENT_TARGETS if t.augment else 0, "source": source}


def shaped_config(cfg, shapes: dict):
  """A copy of cfg whose base model and inner batch have `shapes` (apply_rule reads both)."""
  c = cfg.copy_and_resolve_references()
  c.base_model.hidden_widths = tuple(shapes["hidden_widths"])
  c.unroll.inner_batch_size = int(shapes["batch"])
  return c


def _inputs(cfg, shapes: dict, k: int, seed: int = 0):
  import jax

  import base_models
  from learned_update import rule, timing
  theta = rule.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  state = base_models.init(jax.random.PRNGKey(seed + 1), shapes["input_dim"],
                           base_models.layer_widths(cfg.base_model), cfg.base_model)
  batches = timing.synthetic_batches(cfg, np.random.default_rng(seed), k, shapes["input_dim"],
                                     shapes["num_classes"], shapes["num_regression"])
  return jax.device_put((theta, state, batches))


def _describe(cfg, shapes: dict) -> dict:
  import base_models
  return {"input_dim": shapes["input_dim"], "layer_widths": list(base_models.layer_widths(cfg.base_model)),
          "inner_batch_size": int(cfg.unroll.inner_batch_size), "source": shapes["source"],
          "compute_h_size": int(cfg.rule.compute_h_size), "top_delta_size": int(cfg.rule.top_delta_size),
          "num_evaluations": int(cfg.meta_objective.num_evaluations),
          "samples_per_class": int(cfg.meta_objective.samples_per_class),
          "num_classes": shapes["num_classes"], "num_regression_targets": shapes["num_regression"],
          "checkpoint_unroll": bool(cfg.rule.checkpoint_unroll), "h_dtype": str(cfg.rule.h_dtype)}


# ------------------------------------------------------------------ per config


def bench_config(cfg, shapes: dict, measure_ks=(5,), memory_ks=(), peak_gflops: float | None = None,
                 counted_once: bool = True, compile_threads: int = 2, compiler_options=None,
                 cold_compile: bool = True, log=print) -> dict:
  """Rates, compile seconds, FLOPs and memory of one config's rule at `shapes`.

  `compiler_options` apply to the timed executables (None: XLA's defaults). The first k
  of `measure_ks` gives the reported compile seconds (cold if `cold_compile`); the other
  measured ks and the memory-only executables compile together in threads afterwards.
  """
  import base_models
  from learned_update import unroll
  measure_ks = tuple(sorted(set(int(k) for k in measure_ks)))
  memory_ks = tuple(sorted(set(int(k) for k in memory_ks)))
  cfg = shaped_config(cfg, shapes)
  fns = unroll.make_unroll_fns(cfg)
  num_classes = shapes["num_classes"]
  units = (shapes["input_dim"],) + tuple(base_models.layer_widths(cfg.base_model))
  out = {"shapes": _describe(cfg, shapes), "compile_sec": {}, "lower_sec": {},
         "compile_cache_hits": {}, "memory": {}, "meta_grad": {}}

  def record(name, compiled, sec, hits):
    out["compile_sec"][name], out["compile_cache_hits"][name] = sec, hits
    out["memory"][name] = memory_of(compiled)

  # Rule only (one k-step scan), then the first meta-gradient: compiled alone, so their
  # compile seconds are this machine's, not shared with other compiles.
  k0 = measure_ks[0]
  inputs = {k: _inputs(cfg, shapes, k) for k in set(measure_ks) | set(memory_ks)}
  theta, state, batches = inputs[k0]
  lowered, out["lower_sec"]["apply_rule"] = _lower(fns.apply_rule, theta, state, batches["unlabelled"])
  with persistent_cache_off(cold_compile):
    compiled, sec, hits = _compile(lowered, compiler_options)
  record("apply_rule", compiled, sec, hits)
  step_sec = time_call(compiled, (theta, state, batches["unlabelled"]), min_calls=2, max_calls=3) / k0
  out["sec_per_inner_step"], out["inner_steps_per_sec"] = step_sec, 1.0 / step_sec
  xla_step = _flops(compiled) / (1 if counted_once else k0)
  log(f"  apply_rule k={k0}: {step_sec * 1e3:.1f} ms/inner step (compile {sec:.1f} s)")

  def lower_meta_grad(c, k):
    th, st, ba = inputs[k]
    fn = unroll.make_unroll_fns(c).meta_gradient
    return _lower(fn, th, st, ba, num_classes=num_classes)

  lowered, out["lower_sec"][f"meta_grad_k{k0}"] = lower_meta_grad(cfg, k0)
  with persistent_cache_off(cold_compile):
    compiled, sec, hits = _compile(lowered, compiler_options)
  record(f"meta_grad_k{k0}", compiled, sec, hits)
  timed = {k0: compiled}
  xla_mg_step = _flops(compiled) / (1 if counted_once else k0)
  out["compile"] = {"apply_rule_sec": out["compile_sec"]["apply_rule"], "meta_grad_sec": sec, "k": k0,
                    "cold": bool(cold_compile) or not (hits or out["compile_cache_hits"]["apply_rule"])}
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
      jobs.append((lower_meta_grad(c, k)[0], FAST_COMPILE))
      names.append(("memory", checkpoint, k))
  if jobs:
    t = time.perf_counter()
    results = compile_many(jobs, compile_threads)
    log(f"  {len(jobs)} more executables compiled in {time.perf_counter() - t:.0f} s "
        f"({compile_threads} threads)")
  else:
    results = []
  memory_only, memory_hits = {}, 0
  for (kind, checkpoint, k), (compiled, sec, hits) in zip(names, results):
    if kind == "timed":
      record(f"meta_grad_k{k}", compiled, sec, hits)
      timed[k] = compiled
    else:
      memory_only[(checkpoint, k)] = memory_of(compiled)["peak_bytes"]
      memory_hits += hits

  for k in measure_ks:
    sec = time_call(timed[k], inputs[k], min_calls=1, max_calls=2, budget_sec=10.0)
    out["meta_grad"][str(k)] = {"sec": sec, "measured": True}
    log(f"  meta_gradient k={k}: {sec:.2f} s")

  if memory_ks:
    out["memory_vs_k"] = _memory_vs_k(cfg, out["memory"], memory_only, memory_ks, measure_ks)
    out["memory_vs_k"]["compile_cache_hits"] = memory_hits

  # FLOPs: XLA against the formula (per step; a meta-gradient is k steps).
  step = rule_step_flops(cfg.rule, shapes["batch"], units)
  evaluation = evaluation_flops(cfg.meta_objective, units, num_classes,
                                num_classes + shapes["num_regression"])
  passes = meta_grad_passes(cfg.rule)
  formula_mg_step = passes * (step["total"] + evaluation["total"])
  out["flops"] = {
      "xla_per_inner_step": xla_step, "formula_per_inner_step": step["total"],
      "ratio_inner_step": xla_step / step["total"],
      "xla_per_meta_grad_step": xla_mg_step, "formula_per_meta_grad_step": formula_mg_step,
      "ratio_meta_grad": xla_mg_step / formula_mg_step, "formula_passes_per_meta_grad_step": passes,
      "formula_inner_step_parts": step, "formula_evaluation_parts": evaluation,
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
  out["device_memory_stats"] = _device_memory_stats()
  return out


def _memory_vs_k(cfg, timed_memory: dict, memory_only: dict, memory_ks, measure_ks) -> dict:
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
  result["method"] = ("XLA memory_analysis of meta_gradient: argument + output + temp - alias bytes "
                      "(memory-only executables at LLVM -O0, same buffer assignment); "
                      "extrapolated_ks from the affine fit over measured_ks")
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
    flops = r["flops"]
    for k, v in r["meta_grad"].items():
      v["meta_grads_per_sec"] = 1.0 / v["sec"]
      v["inner_steps_per_sec"] = int(k) / v["sec"]
      v["xla_flops"] = flops["xla_per_meta_grad_step"] * int(k)
      if "formula_per_meta_grad_step" in flops:
        v["formula_flops"] = flops["formula_per_meta_grad_step"] * int(k)


# ------------------------------------------------------------------ scaling table


def scaling_axes(base: dict, quick: bool = False) -> dict:
  """Values of each axis: the base point and one more (quick: one extra shape in all).

  One more value per axis, not two: each shape is a compile of apply_rule (~20 CPU-s),
  and two points per axis already give the exponent of time against that axis.
  """
  if quick:
    return {"batch": (base["batch"] // 2, base["batch"]), "width": (base["width"],),
            "input_dim": (base["input_dim"],)}
  return {"batch": (base["batch"], 2 * base["batch"]),
          "width": (base["width"], 2 * base["width"]),
          # 28x28 (MNIST) against the base (16x16 greyscale for local).
          "input_dim": tuple(sorted({base["input_dim"], 784 if base["input_dim"] < 784
                                     else 2 * base["input_dim"]}))}


def scaling_table(base_cfg, base_shapes: dict, k: int = 5, quick: bool = False, known: dict | None = None,
                  compile_threads: int = 2, compiler_options=None, log=print) -> dict:
  """Seconds per inner step (apply_rule, k-step scan) varying batch, width, input size.

  One axis varies at a time around `base_shapes` (depth and every other setting fixed).
  `known`: {(batch, width, input_dim): {"sec_per_inner_step", "xla_flops"}} already measured
  (the base point is the scaled config's own apply_rule): not compiled again.
  """
  from learned_update import unroll
  depth = len(base_shapes["hidden_widths"])
  base = {"batch": base_shapes["batch"], "width": base_shapes["hidden_widths"][0],
          "input_dim": base_shapes["input_dim"]}
  axes = scaling_axes(base, quick)
  known = dict(known or {})
  points = {}
  for axis, values in axes.items():
    for v in values:
      p = dict(base, **{axis: v})
      points[(p["batch"], p["width"], p["input_dim"])] = p
  jobs, todo = [], []
  for key in points:
    if key in known:
      continue
    batch, width, input_dim = key
    shapes = dict(base_shapes, batch=batch, hidden_widths=(width,) * depth, input_dim=input_dim)
    cfg = shaped_config(base_cfg, shapes)
    theta, state, batches = _inputs(cfg, shapes, k)
    jobs.append((_lower(unroll.make_unroll_fns(cfg).apply_rule, theta, state, batches["unlabelled"])[0],
                 compiler_options))
    todo.append((key, (theta, state, batches["unlabelled"])))
  t = time.perf_counter()
  compiled = compile_many(jobs, compile_threads)
  log(f"  compiled {len(jobs)} shapes in {time.perf_counter() - t:.0f} s "
      f"({len(known)} reused from the config's own measurement)")
  rows = {key: dict(v) for key, v in known.items() if key in points}
  for (key, args), (fn, _, _) in zip(todo, compiled):
    rows[key] = {"sec_per_inner_step": time_call(fn, args, min_calls=2, max_calls=3, budget_sec=5.0) / k,
                 "xla_flops": _flops(fn)}
  for (batch, width, input_dim), r in rows.items():
    units = (input_dim,) + (width,) * depth + (int(base_cfg.base_model.top_width),)
    r.update(batch=batch, width=width, input_dim=input_dim,
             formula_flops=rule_step_flops(base_cfg.rule, batch, units)["total"])
  ref = rows[(base["batch"], base["width"], base["input_dim"])]
  for r in rows.values():
    r["time_vs_base"] = r["sec_per_inner_step"] / ref["sec_per_inner_step"]
    r["formula_flops_vs_base"] = r["formula_flops"] / ref["formula_flops"]
  table = {axis: [rows[(p["batch"], p["width"], p["input_dim"])]
                  for p in (dict(base, **{axis: v}) for v in values)]
           for axis, values in axes.items()}
  return {"k": k, "base": base, "hidden_layers": depth, "compiler_options": compiler_options or {},
          "rule": {"compute_h_size": int(base_cfg.rule.compute_h_size)}, **table}


# ------------------------------------------------------------------ h network precision


H_DTYPES = ("float32", "bfloat16")


def _flat(tree) -> np.ndarray:
  import jax
  return np.concatenate([np.asarray(l, np.float64).ravel() for l in jax.tree_util.tree_leaves(tree)])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def h_dtype_study(cfg, shapes: dict, k: int = 5, dtypes=H_DTYPES, compiler_options=None,
                  compile_threads: int = 2, log=print) -> dict:
  """Speed of the rule and of a meta-gradient with the h network in each dtype, and the error.

  Every dtype runs on the same θ, base model and batches. The error of a low-precision
  meta-gradient is its cosine to the float32 one and its relative L2 distance; for scale,
  `sampling_cosine` is the cosine between two float32 meta-gradients from the same start
  on different batches (the noise that averaging over a learner batch already has to beat).
  """
  import jax
  from learned_update import unroll
  cfg = shaped_config(cfg, shapes)
  num_classes = shapes["num_classes"]
  theta, state, batches = _inputs(cfg, shapes, k)
  other = _inputs(cfg, shapes, k, seed=1)[2]  # another batch stream, same θ and state
  jobs, fns = [], {}
  for dtype in dtypes:
    c = cfg.copy_and_resolve_references()
    c.rule.h_dtype = dtype
    fns[dtype] = unroll.make_unroll_fns(c)
    jobs.append((_lower(fns[dtype].apply_rule, theta, state, batches["unlabelled"])[0], compiler_options))
    jobs.append((_lower(fns[dtype].meta_gradient, theta, state, batches, num_classes=num_classes)[0],
                 compiler_options))
  t = time.perf_counter()
  compiled = [c for c, _, _ in compile_many(jobs, compile_threads)]
  log(f"  {len(jobs)} executables compiled in {time.perf_counter() - t:.0f} s")
  out = {"k": int(k), "shapes": _describe(cfg, shapes), "dtypes": {}}
  reference = None
  for i, dtype in enumerate(dtypes):
    apply_rule, meta_grad = compiled[2 * i], compiled[2 * i + 1]
    step_sec = time_call(apply_rule, (theta, state, batches["unlabelled"]), min_calls=2, max_calls=3) / k
    mg_sec = time_call(meta_grad, (theta, state, batches), min_calls=1, max_calls=2)
    loss, _, _, grads = meta_grad(theta, state, batches)
    g = _flat(grads)
    row = {"sec_per_inner_step": step_sec, "sec_per_meta_grad": mg_sec, "meta_loss": float(loss),
           "grad_norm": float(np.linalg.norm(g)), "finite": bool(np.all(np.isfinite(g)))}
    if reference is None:
      reference = {"g": g, "row": row}
      g_other = _flat(meta_grad(theta, state, other)[3])
      row["sampling_cosine"] = _cosine(g, g_other)
    else:
      ref = reference["row"]
      row.update({
          "speedup_inner_step": ref["sec_per_inner_step"] / step_sec,
          "speedup_meta_grad": ref["sec_per_meta_grad"] / mg_sec,
          "grad_cosine_to_float32": _cosine(g, reference["g"]),
          "grad_rel_error": float(np.linalg.norm(g - reference["g"]) / (np.linalg.norm(reference["g"]) + 1e-30)),
          "meta_loss_abs_diff": abs(float(loss) - ref["meta_loss"])})
    out["dtypes"][dtype] = row
    log(f"  h_dtype {dtype}: {step_sec * 1e3:.1f} ms/inner step, {mg_sec:.2f} s/meta-grad (k={k})"
        + (f", grad cosine to float32 {row['grad_cosine_to_float32']:.4f}" if "grad_cosine_to_float32" in row
           else f", sampling cosine {row['sampling_cosine']:.3f}"))
  return out


# ------------------------------------------------------------------ Ray


def start_ray(num_cpus: int) -> bool:
  """Starts a Ray instance of this process's own; False if Ray was already initialised.

  address="local": always a new instance, never one already running on this machine
  (e.g. a meta-training run's), whatever RAY_ADDRESS or /tmp/ray say.
  """
  import ray
  if ray.is_initialized():
    return False
  ray.init(address="local", num_cpus=int(num_cpus), include_dashboard=False,
           object_store_memory=1 << 30, log_to_driver=False, namespace="meta_unsup_benchmark")
  return True


def ray_task_config(base_module: str = "configs.local"):
  """The config's own rule and task distribution pinned to one shape (one compile per actor).

  The largest architecture (depth_max x width_max), omniglot where the config has it (the
  smallest data set to load), one number of classes and the first unroll length.
  """
  cfg = load_config(base_module)
  t = cfg.task
  dataset = "omniglot" if "omniglot" in tuple(t.datasets) else tuple(t.datasets)[0]
  cfg.task.update(dict(datasets=(dataset,), dataset_weights=(1.0,), depth_min=int(t.depth_max),
                       width_min=int(t.width_max), width_grid=1,
                       num_classes_choices=(int(max(t.num_classes_choices)),)))
  cfg.unroll.lengths = (int(tuple(cfg.unroll.lengths)[0]),)
  cfg.workers.update(dict(num_workers=max(RAY_WORKER_COUNTS), mode="ray", ray_address="",
                          cpus_per_worker=1))
  return cfg


def ray_scaling(cfg, worker_counts=RAY_WORKER_COUNTS, measure_sec: float = 15.0, min_results: int = 4,
                warmup_results: int = 1, deadline_sec: float = 900.0, seed: int = 0, log=print) -> dict:
  """Meta-gradients per second of RayPool with 1 and 2 pinned actors, and the learner's share.

  Starts Ray (`start_ray`) unless it is initialised: call it before this process runs any
  JAX computation. Throughput is (results - 1) / (last arrival - first arrival) after every
  actor delivered `warmup_results` (discarded: the first includes compilation) and the
  learner applied once (compiles Adam's step). The learner accepts every result and
  applies an update every `learner.batch_size`; `learner_share` is the time spent in
  `Learner.apply` over the wall time of the measured window of the run with the most
  workers. `parallel_efficiency` = throughput x median worker seconds per gradient /
  workers: 1.0 means no time lost outside `compute_gradient` (it separates overheads from
  changes in the per-gradient cost itself between the runs). Each phase gives up after
  `deadline_sec` (RuntimeError) rather than hang.
  """
  import ray

  cfg = cfg.copy_and_resolve_references()
  cfg.workers.num_workers = max(worker_counts)
  started = start_ray(cfg.workers.num_workers * cfg.workers.cpus_per_worker)
  try:
    import jax

    from distributed import learner as learner_lib
    from learned_update import rule
    theta = jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(seed), cfg.rule))
    learner = learner_lib.Learner(cfg.learner, theta)
    t = cfg.task
    out = {"workers": {}, "task": {"datasets": list(t.datasets), "image_size": int(t.image_size),
                                   "layer_widths": [int(t.width_max)] * int(t.depth_max)
                                   + [int(cfg.base_model.top_width)],
                                   "num_classes": list(t.num_classes_choices),
                                   "k": list(cfg.unroll.lengths),
                                   "inner_batch_size": int(cfg.unroll.inner_batch_size),
                                   "compute_h_size": int(cfg.rule.compute_h_size)},
           "learner_batch_size": int(cfg.learner.batch_size)}
    for n in worker_counts:
      out["workers"][str(n)] = _ray_run(cfg, learner, n, seed, measure_sec, min_results,
                                        warmup_results, deadline_sec, log)
  finally:
    if started:
      ray.shutdown()
  lo, hi = out["workers"][str(min(worker_counts))], out["workers"][str(max(worker_counts))]
  ratio = None
  if lo["meta_grads_per_sec"] and hi["meta_grads_per_sec"]:
    ratio = hi["meta_grads_per_sec"] / lo["meta_grads_per_sec"]
  out["ray_scaling_2_over_1"] = ratio
  out["learner_share"] = hi["learner_share"]
  out["learner_sec_per_update"] = hi["learner_apply_sec"] / max(hi["learner_updates"], 1)
  return out


def _ray_run(cfg, learner, n: int, seed: int, measure_sec: float, min_results: int,
             warmup_results: int, deadline_sec: float, log) -> dict:
  from distributed import pools
  t_start = time.perf_counter()
  pool = pools.RayPool(cfg, seed, n, poll_sec=0.05)
  try:
    delivered = {i: 0 for i in range(n)}
    while min(delivered.values()) < warmup_results or learner.step < 1:
      if time.perf_counter() - t_start > deadline_sec:
        raise RuntimeError(f"Ray warm-up with {n} worker(s): no steady state after {deadline_sec:.0f} s "
                           f"(results per worker {delivered}, learner step {learner.step})")
      for r in pool.results(learner.theta, learner.step):
        delivered[r["worker_id"]] += 1
        learner.accept(r)
      if learner.ready:
        learner.apply()
    warm_sec = time.perf_counter() - t_start
    learner.buffer = []
    arrivals, seconds, apply_sec, updates = [], [], 0.0, 0
    t0 = time.perf_counter()
    while len(arrivals) < min_results or time.perf_counter() - t0 < measure_sec:
      if time.perf_counter() - t0 > deadline_sec:
        raise RuntimeError(f"Ray with {n} worker(s): {len(arrivals)} results in {deadline_sec:.0f} s")
      got = pool.results(learner.theta, learner.step)
      now = time.perf_counter()
      for r in got:
        arrivals.append(now)
        seconds.append(r["seconds"])
        learner.accept(r)
      if learner.ready:
        t = time.perf_counter()
        learner.apply()
        apply_sec += time.perf_counter() - t
        updates += 1
    wall = time.perf_counter() - t0
    window = arrivals[-1] - arrivals[0]
    rate = (len(arrivals) - 1) / window if window > 0 else None
    median = float(np.median(seconds))
    log(f"  {n} worker(s): {rate or float('nan'):.3f} meta-grads/s ({len(arrivals)} results, "
        f"warm-up incl. compile {warm_sec:.0f} s)")
    return {"meta_grads_per_sec": rate, "results": len(arrivals), "window_sec": window,
            "warmup_sec": warm_sec, "worker_sec_per_meta_grad": median,
            "parallel_efficiency": rate * median / n if rate else None,
            "learner_updates": updates, "learner_apply_sec": apply_sec,
            "learner_share": apply_sec / wall, "restarts": pool.restarts}
  finally:
    pool.close()


# ------------------------------------------------------------------ everything


def run_benchmark(config_names=("paper", "local"), quick: bool = False, skip_ray: bool = False,
                  compile_cache: bool = True, cold_compile: bool = True, compile_threads: int = 2,
                  log=print) -> dict:
  """The whole benchmark: Ray first (before any JAX), then peak, configs and scaling.

  quick: configs/tiny.py shapes, every executable at FAST_COMPILE (tests; the rates then
  say nothing about real speed). compile_cache: the persistent cache for executables
  whose compile time is not reported; cold_compile: the reported ones bypass it.
  """
  t_start = time.perf_counter()
  specs = dict(QUICK_SPECS) if quick else {n: CONFIG_SPECS[n] for n in config_names}
  scaled = QUICK_SCALING_CONFIG if quick else SCALING_CONFIG
  result = {"quick": bool(quick), "configs": {}, "section_sec": {}}
  if skip_ray:
    result["ray"] = {"skipped": True}
  else:
    log("Ray scaling (the config's rule on one fixed task shape):")
    t = time.perf_counter()
    module = QUICK_SPECS[scaled]["module"] if quick else CONFIG_SPECS[scaled]["module"]
    result["ray"] = ray_scaling(ray_task_config(module), measure_sec=4.0 if quick else 15.0,
                                min_results=3 if quick else 4, log=log)
    result["section_sec"]["ray"] = time.perf_counter() - t
  result["ray_scaling_2_over_1"] = result["ray"].get("ray_scaling_2_over_1")
  result["learner_share"] = result["ray"].get("learner_share")

  import jax
  if compile_cache:
    from learned_update import export
    export.configure_jax()
  else:
    jax.config.update("jax_enable_compilation_cache", False)
  _CACHE_HITS.register()
  result["compile_cache"] = bool(jax.config.jax_enable_compilation_cache)
  result["cold_compile"] = bool(cold_compile)
  result["device"] = device_info()
  peak = matmul_peak(1024 if quick and result["device"]["platform"] == "cpu" else None,
                     repeats=3 if quick else 5)
  result["matmul_peak"] = peak
  result["matmul_peak_gflops"] = peak["gflops_per_sec"]
  result["matmul_peak_bf16_gflops"] = peak["bfloat16_f32_accumulate_gflops_per_sec"]
  log(f"matmul peak: {peak['gflops_per_sec']:.1f} GFLOP/s (float32 {peak['n']}^2, best of {peak['repeats']}); "
      f"bfloat16 operands, float32 accumulation: {result['matmul_peak_bf16_gflops']:.1f} GFLOP/s")
  counted_once = loop_body_counted_once()
  options = FAST_COMPILE if quick else None
  result["compiler_options"] = options or {}

  shapes = {}
  for name, spec in specs.items():
    t = time.perf_counter()
    cfg = load_config(spec["module"])
    shapes[name] = bench_shapes(cfg, spec["shapes"])
    log(f"config {name} ({spec['module']}, input {shapes[name]['input_dim']}, "
        f"widths {shapes[name]['hidden_widths']}, batch {shapes[name]['batch']}):")
    result["configs"][name] = bench_config(
        cfg, shapes[name], spec["measure_ks"], spec["memory_ks"], peak["gflops_per_sec"],
        counted_once, compile_threads, options, cold_compile, log)
    result["section_sec"][name] = time.perf_counter() - t
  extrapolate(result["configs"], QUICK_REPORT_KS if quick else REPORT_KS)

  log("scaling of time per inner step:")
  t = time.perf_counter()
  spec = QUICK_SPECS[scaled] if quick else CONFIG_SPECS[scaled]
  base_cfg = load_config(spec["module"])
  base_shapes = shapes.get(scaled) or bench_shapes(base_cfg, spec["shapes"])
  known = {}
  if scaled in result["configs"]:
    r = result["configs"][scaled]
    key = (base_shapes["batch"], base_shapes["hidden_widths"][0], base_shapes["input_dim"])
    if len(set(base_shapes["hidden_widths"])) == 1:
      known[key] = {"sec_per_inner_step": r["sec_per_inner_step"], "xla_flops": r["flops"]["xla_per_inner_step"]}
  result["scaling"] = scaling_table(base_cfg, base_shapes, k=spec["measure_ks"][0], quick=quick,
                                    known=known, compile_threads=compile_threads,
                                    compiler_options=options, log=log)
  result["section_sec"]["scaling"] = time.perf_counter() - t

  log(f"h network precision ({scaled} shapes):")
  t = time.perf_counter()
  result["h_dtype"] = h_dtype_study(base_cfg, base_shapes, k=spec["measure_ks"][0],
                                    compiler_options=options, compile_threads=compile_threads, log=log)
  low = result["h_dtype"]["dtypes"]["bfloat16"]
  result["bfloat16_h"] = {k: low[k] for k in ("speedup_inner_step", "speedup_meta_grad",
                                               "grad_cosine_to_float32", "grad_rel_error")}
  result["section_sec"]["h_dtype"] = time.perf_counter() - t

  result["fraction_of_peak"] = {n: r.get("fraction_of_peak") for n, r in result["configs"].items()}
  result["compile_sec"] = {n: r["compile"] for n, r in result["configs"].items()}
  result["peak_memory_bytes"] = {n: r["peak_memory_bytes"] for n, r in result["configs"].items()}
  result["max_rss_bytes"] = max_rss_bytes()
  result["wall_sec"] = time.perf_counter() - t_start
  return result


# ------------------------------------------------------------------ report


def _widths(widths) -> str:
  *hidden, top = widths
  if hidden and len(set(hidden)) == 1:
    return f"{hidden[0]}x{len(hidden)}+{top}"
  return "-".join(map(str, widths))


def _mib(x):
  return "-" if x is None else f"{x / 2**20:.0f} MiB"


def format_report(result: dict) -> str:
  """A human-readable summary of `run_benchmark`'s result."""
  d = result["device"]
  lines = [f"device: {d['platform']} ({d['device_kind']}), {d['cpu_cores']} cores, jax {d['jax']}; "
           f"matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s (float32 "
           f"{result['matmul_peak']['n']}x{result['matmul_peak']['n']}; bfloat16 operands "
           f"{result['matmul_peak_bf16_gflops']:.1f})"]
  if result.get("compiler_options"):
    lines.append(f"compiler options {result['compiler_options']}: timings are not representative")
  lines.append("")
  names = list(result["configs"])
  lines.append(f"{'':34s}" + "".join(f"{n:>26s}" for n in names))

  def row(label, fn):
    cells = []
    for n in names:
      try:
        cells.append(fn(result["configs"][n]))
      except (KeyError, TypeError):
        cells.append("-")
    lines.append(f"{label:34s}" + "".join(f"{c:>26s}" for c in cells))

  def compile_cell(r, name):
    return f"{r['compile_sec'][name]:.1f}" + (" (cache)" if r["compile_cache_hits"][name] else "")

  row("input / widths / batch / h size", lambda r: f"{r['shapes']['input_dim']} / "
      f"{_widths(r['shapes']['layer_widths'])} / {r['shapes']['inner_batch_size']} / "
      f"{r['shapes']['compute_h_size']}")
  row("inner steps / s (rule only)", lambda r: f"{r['inner_steps_per_sec']:.2f}")
  ks = sorted({int(k) for r in result["configs"].values() for k in r["meta_grad"]})
  for k in ks:
    row(f"meta-grads / s, k={k}", lambda r, k=k: f"{r['meta_grad'][str(k)]['meta_grads_per_sec']:.3f}"
        + ("" if r["meta_grad"][str(k)]["measured"] else " (extr.)"))
  # Only the two compiles that ran alone: the others shared the cores (compile_sec in the JSON).
  row("compile s: apply_rule", lambda r: compile_cell(r, "apply_rule"))
  row("compile s: meta-gradient", lambda r: compile_cell(r, f"meta_grad_k{r['compile']['k']}")
      + f" (k={r['compile']['k']})")
  row("GFLOP / inner step (XLA)", lambda r: f"{r['flops']['xla_per_inner_step'] / 1e9:.3f}")
  row("  formula, XLA/formula", lambda r: f"{r['flops']['formula_per_inner_step'] / 1e9:.3f}, "
      f"{r['flops']['ratio_inner_step']:.2f}")
  row("  h network share (formula)", lambda r: f"{r['flops']['h_network_share']:.0%}")
  row("GFLOP / meta-grad step (XLA)", lambda r: f"{r['flops']['xla_per_meta_grad_step'] / 1e9:.3f}")
  row("  formula, XLA/formula", lambda r: f"{r['flops']['formula_per_meta_grad_step'] / 1e9:.3f}, "
      f"{r['flops']['ratio_meta_grad']:.2f}")
  row("GFLOP/s inner step (of peak)", lambda r: f"{r['gflops_per_sec_inner_step']:.1f} "
      f"({r['fraction_of_peak_inner_step']:.0%})")
  row("GFLOP/s meta-grad (of peak)", lambda r: f"{r['gflops_per_sec_meta_grad']:.1f} "
      f"({r['fraction_of_peak']:.0%})")
  row("peak memory (XLA), max", lambda r: _mib(r["peak_memory_bytes"]))
  mem_ks = sorted({int(k) for r in result["configs"].values()
                   for k in r.get("memory_vs_k", {}).get("checkpoint", {})})
  for k in mem_ks:
    row(f"memory k={k}: ckpt / no ckpt", lambda r, k=k: f"{_mib(r['memory_vs_k']['checkpoint'][str(k)])} / "
        f"{_mib(r['memory_vs_k']['no_checkpoint'][str(k)])}"
        + (" (extr.)" if k in r["memory_vs_k"].get("extrapolated_ks", []) else ""))
  s = result.get("scaling")
  if s:
    lines += ["", f"time per inner step (rule only, k={s['k']}), base batch {s['base']['batch']}, "
              f"width {s['base']['width']} x{s['hidden_layers']}, input {s['base']['input_dim']}, "
              f"compute_h_size {s['rule']['compute_h_size']}:"]
    for axis in ("batch", "width", "input_dim"):
      cells = ", ".join(f"{r[axis]}: {r['sec_per_inner_step'] * 1e3:.1f} ms (x{r['time_vs_base']:.2f}; "
                        f"flops x{r['formula_flops_vs_base']:.2f})" for r in s[axis])
      lines.append(f"  {axis:9s} {cells}")
  h = result.get("h_dtype")
  if h:
    ref = h["dtypes"]["float32"]
    lines += ["", f"h network in bfloat16 vs float32 (k={h['k']}; float32 sampling cosine between two "
              f"batches {ref['sampling_cosine']:.3f}):"]
    for dtype, r in h["dtypes"].items():
      if dtype == "float32":
        continue
      lines.append(f"  {dtype}: inner step x{r['speedup_inner_step']:.2f}, meta-gradient "
                   f"x{r['speedup_meta_grad']:.2f} speed; meta-gradient cosine to float32 "
                   f"{r['grad_cosine_to_float32']:.4f}, relative error {r['grad_rel_error']:.3f}")
  ray = result.get("ray", {})
  if not ray.get("skipped"):
    w = ray["workers"]
    fmt = lambda x, spec: "-" if x is None else format(x, spec)
    lines += ["", "Ray (RayPool, pinned actors, after warm-up): " + ", ".join(
        f"{n} worker(s) {fmt(v['meta_grads_per_sec'], '.3f')} meta-grads/s" for n, v in w.items())
        + f"; 2/1 = {fmt(ray['ray_scaling_2_over_1'], '.2f')}; learner share {ray['learner_share']:.1%}",
        "  parallel efficiency (rate x median worker s per gradient / workers): " + ", ".join(
            f"{n}: {fmt(v['parallel_efficiency'], '.2f')}" for n, v in w.items())]
  sections = ", ".join(f"{n} {v:.0f} s" for n, v in result.get("section_sec", {}).items())
  lines.append(f"wall time {result['wall_sec']:.0f} s ({sections})")
  return "\n".join(lines)
