"""What every entry point shares: one JSON line at the end, clear errors with exit status 2."""
from __future__ import annotations

import sys

from tasks import data_dir as _data_dir
from util import files

_data_dir.define_data_dir_flag()  # --data_dir for every entry point

_plain = files.json_safe  # plain JSON types (scripts.benchmark writes its file with it)


def emit_json(obj: dict) -> None:
  """The last stdout line of every script: one strict JSON object with its key figures.

  NaN and ±inf become null (a run resumed at its final step has no meta-loss), so any
  JSON parser reads the line.
  """
  print(files.dumps(obj, sort_keys=True), flush=True)


def fail(message: str) -> None:
  """Bad input: say what was wrong and what was expected, exit with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)
