"""What every entry point shares: one JSON line at the end, clear errors with exit status 2."""
from __future__ import annotations

import json
import sys

import numpy as np

from tasks import data_dir as _data_dir

_data_dir.define_data_dir_flag()  # --data_dir for every entry point


def _plain(obj):
  if isinstance(obj, dict):
    return {str(k): _plain(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_plain(v) for v in obj]
  if isinstance(obj, (np.floating, np.integer, np.bool_)):
    return obj.item()
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  return obj


def emit_json(obj: dict) -> None:
  """The last stdout line of every script: one JSON object with its key figures."""
  print(json.dumps(_plain(obj), sort_keys=True), flush=True)


def fail(message: str) -> None:
  """Bad input: say what was wrong and what was expected, exit with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)
