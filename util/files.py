"""Atomic file writes and strict JSON: what every checkpoint, export, cache and result uses.

A reader sees the old file or the whole new one, never a partial write. JSON is written
strictly: NaN and ±inf become ``null`` (``json.dumps`` would write ``NaN``, which is not JSON).
"""

from __future__ import annotations

import io
import json
import math
import os
import pathlib
import tempfile
from typing import Any, Callable, Mapping

import numpy as np

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
  """Calls `write(file)` on a temporary file beside `path`, syncs it, then renames it over `path`."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; a written file is as readable as open() makes it
    os.replace(tmp, path)
  except BaseException:
    try:
      os.unlink(tmp)
    except OSError:
      pass
    raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  _atomic_write(path, lambda f: f.write(data))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  return buf.getvalue()


def atomic_save_npz(
  path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compressed: bool = False
) -> None:
  """np.savez (or savez_compressed) streamed into the temporary file: no in-memory copy."""
  save = np.savez_compressed if compressed else np.savez
  _atomic_write(path, lambda f: save(f, **arrays))


def json_safe(obj: Any) -> Any:
  """Plain JSON types: NumPy scalars/arrays to Python, tuples to lists, NaN/±inf to None."""
  if isinstance(obj, Mapping):
    return {str(k): json_safe(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [json_safe(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return json_safe(obj.tolist())
  if isinstance(obj, (np.floating, np.integer, np.bool_)):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def dumps(obj: Any, **kwargs) -> str:
  """Strict JSON text (never NaN / Infinity)."""
  return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
  atomic_write_bytes(path, dumps(obj, indent=indent).encode())
