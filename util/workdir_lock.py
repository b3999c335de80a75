"""One process of a kind per workdir: an exclusive lock file holding the holder's PID and host.

`WorkdirLock(path).acquire()` takes `path` with `fcntl.flock` (released by the kernel when the
holder dies, so a lock of a dead process is never stuck) and writes "pid host" into it. A second
acquirer gets `LockHeld` naming the holder. A lock file left by a dead process (it exists, nobody
holds it) is taken over with a message saying whose it was. `is_held(path)` tells another process
whether somebody holds it, without taking it (the evaluator asks whether its trainer still runs).
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import socket
import sys


class LockHeld(RuntimeError):
  """Another live process holds the lock."""


def _holder(path: pathlib.Path) -> str:
  try:
    text = path.read_text(encoding="utf-8").strip()
  except OSError:
    return "an unknown process"
  pid, _, host = text.partition(" ")
  return f"PID {pid} on {host}" if pid else "an unknown process"


class WorkdirLock:
  """An exclusive lock on `path` for this process's lifetime (or until `release`)."""

  def __init__(self, path, what: str = "a run"):
    self.path = pathlib.Path(path)
    self.what = what
    self._fd = None

  def acquire(self) -> "WorkdirLock":
    self.path.parent.mkdir(parents=True, exist_ok=True)
    existed = self.path.exists()
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      os.close(fd)
      raise LockHeld(
        f"{self.path.parent} is in use by {self.what} ({_holder(self.path)}, lock file {self.path}); "
        "wait for it to end, stop it, or use another --workdir"
      ) from None
    try:
      same_file = os.stat(self.path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      same_file = False
    if not same_file:  # the holder removed the file as we opened it: lock the new one
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)
      return self.acquire()
    if existed and os.fstat(fd).st_size:
      print(
        f"taking over the lock {self.path} left by {_holder(self.path)}, which no longer runs",
        file=sys.stderr,
      )
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self) -> None:
    """Unlocks and removes the file (an orderly end leaves nothing to take over)."""
    if self._fd is None:
      return
    try:
      self.path.unlink(missing_ok=True)
    finally:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def is_held(path) -> bool:
  """Whether a live process holds the lock at `path` (False when there is no such file)."""
  path = pathlib.Path(path)
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except OSError:
    return True
  else:
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
  finally:
    os.close(fd)
