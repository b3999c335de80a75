"""Synchronous workers in this process: debugging, tests, one-core runs, exact resume.

`results` calls the next worker in turn (one call per round, every task of it: workers.tasks_per_call);
its state (every worker's task, base models and random stream) goes into the checkpoint.
"""

from __future__ import annotations

from absl import logging

from meta_unsup_rules.distributed import gradient_estimators
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.distributed.pools import ErrorTracker


class InProcessPool:
  """Synchronous workers in this process (debugging, tests, exact resume)."""

  def __init__(self, cfg, seed: int, num_workers: int):
    cls = worker_lib.worker_class()
    self.workers = [cls(cfg, seed, i) for i in range(max(1, num_workers))]
    self._next = 0
    self.restarts = 0
    self.errors = ErrorTracker(len(self.workers), cfg.workers.max_consecutive_errors)

  @property
  def worker_errors(self) -> int:
    return self.errors.count

  def results(self, theta, version: int) -> list[gradient_estimators.WorkerResult]:
    w = self.workers[self._next]
    self._next = (self._next + 1) % len(self.workers)
    try:
      results = w.compute_gradients(theta, version)
    except Exception as e:  # pylint: disable=broad-except  (KeyboardInterrupt still stops the run)
      logging.debug("worker %d raised:", w.worker_id, exc_info=True)  # shown with --verbosity=1
      self.errors.failed(w.worker_id, type(e).__name__, str(e))
      w.reset()
      return []
    self.errors.succeeded(w.worker_id)
    return results

  def get_state(self, tasks: bool = True) -> dict:
    """The workers' states; `tasks=False` keeps only their RNGs (see `TaskWorker.get_state`)."""
    return {"workers": [w.get_state(tasks) for w in self.workers], "next": self._next}

  def set_state(self, saved: dict) -> None:
    """Restores `get_state` (plain values and arrays: see `TaskWorker.set_state`); with another
    number of workers the first ones are restored and the rest start afresh."""
    if len(saved["workers"]) != len(self.workers):
      logging.warning(
        "resuming %d in-process workers from a checkpoint of %d: %s; the resumed run is not "
        "the one an uninterrupted run would have been",
        len(self.workers),
        len(saved["workers"]),
        "the first ones continue their tasks, the others start fresh ones"
        if len(self.workers) > len(saved["workers"])
        else f"the tasks of the last {len(saved['workers']) - len(self.workers)} are dropped",
      )
    for w, s in zip(self.workers, saved["workers"]):
      w.set_state(s)
    self._next = int(saved["next"]) % len(self.workers)

  def close(self) -> None:
    pass
