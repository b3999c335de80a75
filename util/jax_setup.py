"""The JAX set-up every entry point makes before its first compilation."""

from __future__ import annotations

import os

import jax


def configure_jax(cache_dir: str | None = None) -> None:
  """Persistent compilation cache: the unroll takes tens of seconds to compile, so a second run of
  the same shapes (a resume, the next evaluation, the next test) loads it instead."""
  cache_dir = cache_dir or os.environ.get(
    "META_UNSUP_JAX_CACHE", os.path.expanduser("~/.cache/meta_unsup/jax")
  )
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
