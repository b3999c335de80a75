"""A process-wide memo that is safe under threads: lru_cache behind one lock per function."""

from __future__ import annotations

import functools
import threading


def locked_lru_cache(maxsize: int | None = 16):
  """`functools.lru_cache` whose calls are serialised: one load per key, even from threads."""

  def decorate(fn):
    cached = functools.lru_cache(maxsize=maxsize)(fn)
    lock = threading.RLock()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      with lock:
        return cached(*args, **kwargs)

    wrapper.cache_clear = cached.cache_clear
    wrapper.cache_info = cached.cache_info
    return wrapper

  return decorate
