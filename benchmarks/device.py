"""What the benchmark ran on, and the yardsticks its figures are set against.

The fraction of peak is the rule's FLOP rate over a float32 matmul rate measured in the same
process (`matmul_peak`), not a datasheet number; memory is XLA's (elsewhere), the device's
own counters where the backend has them, and the process's peak resident set size.
"""

from __future__ import annotations

import os
import platform

import jax
import jax.numpy as jnp
import jaxlib

from meta_unsup_rules.benchmarks import xla

try:
  import resource
except ImportError:  # not on POSIX
  resource = None


def device_memory_stats() -> dict | None:
  """`jax.devices()[0].memory_stats()` where the backend has it (GPU), else None."""
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    return None
  return dict(stats) if stats else None


def device_info() -> dict:
  dev = jax.devices()[0]
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {
    "platform": dev.platform,
    "device_kind": dev.device_kind,
    "num_devices": jax.device_count(),
    "cpu_cores": cores,
    "machine": platform.machine(),
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "memory_stats_available": device_memory_stats() is not None,
  }


def max_rss_bytes() -> int | None:
  if resource is None:
    return None
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(rss if platform.system() == "Darwin" else rss * 1024)  # Linux reports KiB


def matmul_peak(n: int | None = None, repeats: int = 5) -> dict:
  """Best float32 n x n matmul rate of this device (the reference for fraction_of_peak).

  Default precision, like the rule's own matmuls (on GPUs with TF32 that is what both
  use). n: 2048 on CPU (~0.1-0.5 s a call on 2 cores), 8192 on accelerators (smaller
  matmuls are launch-bound there).
  """
  platform_name = jax.devices()[0].platform
  n = n or (2048 if platform_name == "cpu" else 8192)
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  compiled = jax.jit(jnp.matmul).lower(a, b).compile()
  jax.block_until_ready(compiled(a, b))
  best = xla.time_call(compiled, (a, b), min_calls=repeats, max_calls=repeats)
  flops = 2.0 * n**3
  # For the bfloat16 study: bf16 operands, float32 accumulation (AMX / tensor cores where present).
  a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
  low = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32)).lower(a16, b16).compile()
  jax.block_until_ready(low(a16, b16))
  best16 = xla.time_call(low, (a16, b16), min_calls=repeats, max_calls=repeats)
  return {
    "n": n,
    "dtype": "float32",
    "precision": "default",
    "repeats": repeats,
    "best_sec": best,
    "flops": flops,
    "xla_flops": xla.flops_of(compiled),
    "gflops_per_sec": flops / best / 1e9,
    "bfloat16_f32_accumulate_gflops_per_sec": flops / best16 / 1e9,
  }
