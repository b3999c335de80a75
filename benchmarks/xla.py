"""Compiling, timing and costing XLA executables: what every benchmark part measures with.

Timed calls go to ahead-of-time compiled executables (`lower` then `compile_one`), so they
never include compilation; FLOPs and bytes come from XLA's own `cost_analysis()` and
`memory_analysis()` of the same executables, so they are deterministic and backend-neutral.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time

import jax
import jax.numpy as jnp
from jax.experimental.compilation_cache import compilation_cache

# LLVM -O0: compiles ~2.3x faster. XLA's HLO passes and buffer assignment do not depend on
# it (memory_analysis and cost_analysis came out identical for the tiny and local
# meta-gradient), only the generated code's speed (~2x slower): used for compile-only
# memory figures, and for everything in --quick mode (tests), where speed is not the point.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


class CacheHits:
  """Counts persistent-compilation-cache hits (JAX monitoring events).

  A reported compile time served from the cache would not be a compile time: the counts
  say where that happened.
  """

  def __init__(self):
    self.count = 0
    self._lock = threading.Lock()
    self._registered = False

  def register(self):
    if self._registered:
      return
    jax.monitoring.register_event_listener(self._on_event)
    self._registered = True

  def _on_event(self, event, **kwargs):
    del kwargs
    if event == "/jax/compilation_cache/cache_hits":
      with self._lock:
        self.count += 1


CACHE_HITS = CacheHits()


def flops_of(compiled) -> float:
  """XLA's FLOP count of an executable (a while loop's body counted once)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per computation
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", 0.0))


def memory_of(compiled) -> dict:
  """XLA's buffer assignment of an executable: bytes, and the peak they add up to."""
  m = compiled.memory_analysis()
  if m is None:
    return {"peak_bytes": None}
  out = {
    f"{name}_bytes": int(getattr(m, f"{name}_size_in_bytes", 0))
    for name in ("argument", "output", "alias", "temp", "generated_code")
  }
  out["peak_bytes"] = out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"] - out["alias_bytes"]
  return out


def lower(jitted, *args, **static):
  """(lowered computation, seconds spent lowering)."""
  t = time.perf_counter()
  lowered = jitted.lower(*args, **static)
  return lowered, time.perf_counter() - t


@contextlib.contextmanager
def persistent_cache_off(enabled: bool = True):
  """Compiles inside bypass the persistent cache (neither read nor written).

  JAX decides once whether the cache is used; `reset_cache` makes it decide again.
  Not thread-safe: only around compiles that run alone.
  """
  if not enabled or not jax.config.jax_enable_compilation_cache:
    yield
    return
  jax.config.update("jax_enable_compilation_cache", False)
  compilation_cache.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", True)
    compilation_cache.reset_cache()


def compile_one(lowered, options: dict | None = None) -> tuple:
  """(executable, compile seconds, persistent-cache hits during the call)."""
  hits = CACHE_HITS.count
  t = time.perf_counter()
  compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
  return compiled, time.perf_counter() - t, CACHE_HITS.count - hits


def compile_many(jobs: list, max_workers: int = 2) -> list:
  """[(lowered, options)] -> [(executable, seconds, hits)], in threads (XLA releases the GIL).

  For executables whose compile time is not reported: concurrent compiles share the cores.
  """
  if max_workers <= 1 or len(jobs) <= 1:
    return [compile_one(lo, opts) for lo, opts in jobs]
  with concurrent.futures.ThreadPoolExecutor(max_workers) as pool:
    return list(pool.map(lambda job: compile_one(*job), jobs))


def time_call(fn, args, min_calls: int = 1, max_calls: int = 3, budget_sec: float = 10.0) -> float:
  """Best wall seconds of `fn(*args)` over min_calls..max_calls calls (stop after budget_sec)."""
  best, spent, calls = float("inf"), 0.0, 0
  while calls < min_calls or (calls < max_calls and spent < budget_sec):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    dt = time.perf_counter() - t
    best, spent, calls = min(best, dt), spent + dt, calls + 1
  return best


def loop_body_counted_once() -> bool:
  """Whether XLA's cost analysis counts a scan's body once regardless of its length.

  If so, the FLOPs of a k-step executable are those of one step.
  """

  def flops(n):
    def f(x):
      return jax.lax.scan(lambda c, _: (c @ x, None), x, None, length=n)[0]

    return flops_of(jax.jit(f).lower(jnp.ones((32, 32), jnp.float32)).compile())

  one, four = flops(1), flops(4)
  return bool(four < 2.0 * one)
