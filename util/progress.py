"""Progress with ETA for every long command: a tqdm bar on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns, which a log file keeps as one ever-growing line.
When stderr is not a terminal the bar's text is written instead as whole lines (no ``\\r``),
at most one every `file_interval_sec`, plus the final one.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class _Lines:
  """A file for tqdm that turns each redraw into one line of its own."""

  def __init__(self, stream: TextIO):
    self.stream = stream
    self.last = None

  def write(self, text: str) -> None:
    for part in text.split("\r"):
      part = part.strip()
      if part and part != self.last:  # closing redraws the last state once more
        self.stream.write(part + "\n")
        self.last = part

  def flush(self) -> None:
    self.stream.flush()


def is_terminal(stream: TextIO) -> bool:
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):  # closed or replaced streams (pytest's capture, a pipe shim)
    return False


def bar(
  total: int | None,
  desc: str,
  unit: str = "it",
  initial: int = 0,
  enabled: bool = True,
  stream: TextIO | None = None,
  file_interval_sec: float = 30.0,
) -> tqdm:
  """A tqdm bar on `stream` (default stderr): rate, elapsed and ETA; update it with `.update(n)`
  and finish with `.close()`. `enabled` False shows nothing."""
  stream = sys.stderr if stream is None else stream
  if is_terminal(stream):
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not enabled, file=stream)
  return tqdm(
    total=total,
    desc=desc,
    unit=unit,
    initial=initial,
    disable=not enabled,
    file=_Lines(stream),
    ascii=True,
    ncols=100,
    mininterval=file_interval_sec,
    maxinterval=max(file_interval_sec, 10.0),
  )
