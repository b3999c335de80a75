"""A worker that raises on purpose (not a test module): the pools' fault handling needs real errors.

Tests put it in the pools' place through the worker-class hook (distributed/worker.py):

    monkeypatch.setenv(worker.WORKER_CLASS_ENV, "tests.faulty_worker:FaultyWorker")
    monkeypatch.setenv(faulty_worker.FAULT_ENV, "raise_once:worker=0")

FAULT_ENV: "raise_once" (a worker's first call in its process raises; a replacement or reset worker
does not) or "raise_always", optionally ":worker=N" (only that worker). Ray actors get both variables
with their environment (distributed/ray_pool.py passes the hook on).
"""

from __future__ import annotations

import os

from meta_unsup_rules.distributed import worker as worker_lib

FAULT_ENV = "META_UNSUP_TEST_FAULT"
FAULT_MODES = ("raise_once", "raise_always")
HOOK = "tests.faulty_worker:FaultyWorker"


class InjectedFault(RuntimeError):
  """What FaultyWorker raises."""


def parse(spec: str) -> tuple[str, int | None]:
  """FAULT_ENV's value → (mode, worker id or None = every worker); "" → ("", None)."""
  spec = str(spec or "").strip()
  if not spec:
    return "", None
  mode, _, target = spec.partition(":")
  worker = None
  if target:
    key, _, value = target.partition("=")
    if key.strip() != "worker" or not value.strip().isdigit():
      raise ValueError(f"{FAULT_ENV}: expected MODE or MODE:worker=N, got {spec!r}")
    worker = int(value)
  if mode not in FAULT_MODES:
    raise ValueError(f"{FAULT_ENV}: mode must be one of {FAULT_MODES}, got {spec!r}")
  return mode, worker


class FaultyWorker(worker_lib.TaskWorker):
  """TaskWorker that raises InjectedFault as FAULT_ENV says, before any random draw (so a run
  without faults draws exactly as a plain worker's)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._spec = os.environ.get(FAULT_ENV, "")
    self._fault = parse(self._spec)
    self._calls = 0

  def compute_gradients(self, theta, theta_version: int):
    mode, target = self._fault
    self._calls += 1
    if mode and (target is None or target == self.worker_id):
      if mode == "raise_always" or (self.incarnation == 0 and self._calls == 1):
        # One message for every worker: identical errors are how the pools tell a configuration
        # error (stop the run) from bad luck (replace the worker).
        raise InjectedFault(f"injected fault ({FAULT_ENV}={self._spec!r})")
    return super().compute_gradients(theta, theta_version)
