"""Gradient sources for the learner: in-process workers, or Ray actors (local or cluster).

Both expose `results(theta, version) -> list[dict]`: the worker results that are
ready now, computed with the θ versions they were handed. The Ray pool keeps one
call in flight per actor, hands each idle actor the newest θ (one `ray.put` per
version), restarts an actor that died or went silent with a fresh task, and never
blocks longer than its poll interval, so the learner never hangs on one worker.
"""
from __future__ import annotations

import os
import time

from distributed import worker as worker_lib


class InProcessPool:
  """Synchronous workers in this process (debugging, tests, exact resume)."""

  def __init__(self, cfg, seed: int, num_workers: int):
    self.workers = [worker_lib.TaskWorker(cfg, seed, i) for i in range(max(1, num_workers))]
    self._next = 0
    self.restarts = 0

  def results(self, theta, version: int) -> list[dict]:
    w = self.workers[self._next]
    self._next = (self._next + 1) % len(self.workers)
    return [w.compute_gradient(theta, version)]

  def get_state(self) -> dict:
    return {"workers": [w.get_state() for w in self.workers], "next": self._next}

  def set_state(self, saved: dict) -> None:
    """Restores `get_state` (plain values and arrays: see `TaskWorker.set_state`); with another
    number of workers the first ones are restored and the rest start afresh."""
    for w, s in zip(self.workers, saved["workers"]):
      w.set_state(s)
    self._next = int(saved["next"]) % len(self.workers)

  def close(self) -> None:
    pass


def init_ray(cfg) -> None:
  """Starts or joins Ray before this process runs any JAX computation."""
  import ray
  if ray.is_initialized():
    return
  address = cfg.workers.ray_address or None
  if address:
    ray.init(address=address, include_dashboard=False)
  else:
    ray.init(num_cpus=max(1, cfg.workers.num_workers) * cfg.workers.cpus_per_worker,
             include_dashboard=False, object_store_memory=1 << 30,
             log_to_driver=False)


def _actor_class():
  import ray

  @ray.remote
  class GradientActor:
    """One TaskWorker in its own process, pinned to one core before JAX is imported."""

    def __init__(self, cfg_json: str, seed: int, worker_id: int, pin: bool, jax_platforms: str):
      if pin and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[worker_id % len(cores)]})
      if jax_platforms:
        # Before any backend starts: on a GPU machine every actor would otherwise claim the
        # GPU and pre-allocate most of its memory.
        import jax
        jax.config.update("jax_platforms", jax_platforms)
      self.worker = worker_lib.make_worker(cfg_json, seed, worker_id)

    def compute_gradient(self, theta, version: int) -> dict:
      return self.worker.compute_gradient(theta, version)

  return GradientActor


class RayPool:
  """Asynchronous Ray actors, one call in flight each."""

  def __init__(self, cfg, seed: int, num_workers: int, poll_sec: float = 1.0):
    import ray
    self.ray = ray
    self.cfg_json = cfg.to_json()
    self.seed = seed
    self.poll_sec = poll_sec
    self.timeout_sec = float(cfg.workers.result_timeout_sec)
    self.pin = not cfg.workers.ray_address
    self.jax_platforms = str(cfg.workers.get("jax_platforms", ""))
    self.actor_cls = _actor_class().options(num_cpus=cfg.workers.cpus_per_worker)
    self.actors = {}
    self.in_flight = {}   # ObjectRef -> (worker_id, submitted_at)
    self.restarts = 0
    self._generation = 0
    self._theta_ref = None
    self._theta_version = None
    for i in range(num_workers):
      self._start(i)

  def _start(self, worker_id: int) -> None:
    # A restarted worker gets a new seed, hence a fresh task stream.
    seed = self.seed + 1_000_003 * self._generation
    self._generation += 1
    self.actors[worker_id] = self.actor_cls.remote(self.cfg_json, seed, worker_id, self.pin,
                                                   self.jax_platforms)

  def _submit(self, worker_id: int) -> None:
    ref = self.actors[worker_id].compute_gradient.remote(self._theta_ref, self._theta_version)
    self.in_flight[ref] = (worker_id, time.monotonic())

  def results(self, theta, version: int) -> list[dict]:
    ray = self.ray
    if version != self._theta_version:
      self._theta_ref, self._theta_version = ray.put(theta), version
    busy = {wid for wid, _ in self.in_flight.values()}
    for wid in self.actors:
      if wid not in busy:
        self._submit(wid)
    ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=self.poll_sec)
    if ready:  # take everything that has finished by now
      ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
    out = []
    for ref in ready:
      wid, _ = self.in_flight.pop(ref)
      try:
        out.append(ray.get(ref))
      except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
        self._restart(wid)
    now = time.monotonic()
    for ref, (wid, since) in list(self.in_flight.items()):
      if now - since > self.timeout_sec:
        del self.in_flight[ref]
        self._restart(wid)
    return out

  def _restart(self, worker_id: int) -> None:
    self.restarts += 1
    try:
      self.ray.kill(self.actors[worker_id])
    except Exception:  # already gone
      pass
    self._start(worker_id)

  def get_state(self) -> None:
    return None  # asynchronous: workers restart with fresh tasks on resume

  def set_state(self, saved) -> None:
    del saved

  def close(self) -> None:
    for actor in self.actors.values():
      try:
        self.ray.kill(actor)
      except Exception:
        pass
