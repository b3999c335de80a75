"""What the worker pools share: worker errors and their counting, the counters a checkpoint keeps, and
`make_pool`, which builds the pool a config asks for.

Both pools (distributed/inprocess_pool.py, distributed/ray_pool.py) expose
`results(theta, version) -> list[WorkerResult]`: the worker results that are ready now, computed with
the θ versions they were handed.

An exception raised inside a worker's computation (a bad task, a transient failure) costs that worker
its task, not the run: it is logged (type and message), counted in `worker_errors`, and the worker
starts over on a fresh task. Only when every worker has raised the same error
`workers.max_consecutive_errors` times in a row (a configuration or data error that no fresh task will
fix) does the pool raise `WorkerConfigError`.
"""

from __future__ import annotations

from absl import logging


class WorkerConfigError(RuntimeError):
  """Every worker keeps raising the same error: the run stops instead of retrying forever."""


class ErrorTracker:
  """Counts worker errors and each worker's streak of identical ones.

  "Same error" is the same exception type name and message. A successful result ends a
  worker's streak; a worker that died or went silent keeps it (that says nothing new).
  """

  def __init__(self, num_workers: int, max_consecutive: int):
    self.num_workers = num_workers
    self.max_consecutive = int(max_consecutive)  # 0: never stop the run
    self.count = 0
    self._streaks = {}  # worker id -> ((type name, message), length)

  def succeeded(self, worker_id: int) -> None:
    self._streaks.pop(worker_id, None)

  def failed(self, worker_id: int, type_name: str, message: str) -> None:
    """Logs and counts one error; raises WorkerConfigError when every worker is stuck on it."""
    self.count += 1
    logging.warning("worker %d raised %s: %s (it starts over on a fresh task)", worker_id, type_name, message)
    error = (type_name, message)
    previous, length = self._streaks.get(worker_id, (None, 0))
    self._streaks[worker_id] = (error, length + 1 if previous == error else 1)
    n = self.max_consecutive
    if (
      n > 0
      and len(self._streaks) >= self.num_workers
      and all(e == error and k >= n for e, k in self._streaks.values())
    ):
      raise WorkerConfigError(
        f"every worker ({self.num_workers}) raised the same error {n} times in a row "
        f"(workers.max_consecutive_errors={n}), a configuration or data error: "
        f"{type_name}: {message}"
      )


def get_counters(pool) -> dict[str, int]:
  """The pool's run-long counters, kept in the checkpoint so they survive a resume."""
  return {"worker_restarts": int(pool.restarts), "worker_errors": int(pool.worker_errors)}


def set_counters(pool, saved: dict) -> None:
  """Restores `get_counters` (a checkpoint written before they were kept counts from 0)."""
  pool.restarts = int(saved.get("worker_restarts", 0))
  pool.errors.count = int(saved.get("worker_errors", 0))


def make_pool(cfg):
  """The in-process pool (`workers.mode = "inprocess"` or no workers) or the Ray pool."""
  # pylint: disable=g-import-not-at-top  (Ray is imported only by runs that use it)
  n = int(cfg.workers.num_workers)
  if n == 0 or cfg.workers.mode == "inprocess":
    from meta_unsup_rules.distributed import inprocess_pool

    return inprocess_pool.InProcessPool(cfg, cfg.seed, n)
  from meta_unsup_rules.distributed import ray_pool

  return ray_pool.RayPool(cfg, cfg.seed, n)
