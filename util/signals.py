"""A graceful stop on SIGTERM and a first Ctrl-C: long loops check a flag between steps."""

from __future__ import annotations

import signal
import sys


class StopFlag:
  """Turns SIGTERM and a first Ctrl-C (SIGINT) into a graceful stop: the loop ends between worker
  calls, where every worker's task and state agree, and writes its final checkpoint. A second
  Ctrl-C aborts at once (KeyboardInterrupt) without one: the last periodic checkpoint stands."""

  def __init__(self):
    self.stop = False
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.stop and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.stop = True
    self.signal_name = signal.Signals(signum).name
    if signum == signal.SIGINT:
      print("\nstopping after the current worker call (Ctrl-C again: abort, no checkpoint)", file=sys.stderr)

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
