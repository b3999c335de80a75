"""Asynchronous Ray actors, local or on a cluster (docs/cluster.md).

The Ray pool keeps one call in flight per actor, hands each idle actor the newest θ (one `ray.put`
per version), restarts an actor that died or went silent with a fresh task, and never blocks longer
than its poll interval, so the learner never hangs on one worker. `init_ray` starts or joins Ray
before the process runs any JAX.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import socket
import time

from absl import logging

from meta_unsup_rules.distributed import gradient_estimators
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.distributed.pools import ErrorTracker
from meta_unsup_rules.util import config_compat


class RayAddressError(ConnectionError):
  """`workers.ray_address` names no reachable Ray cluster."""


RAY_CONNECT_TIMEOUT_SEC = 10.0


def check_ray_address(address: str, timeout_sec: float = RAY_CONNECT_TIMEOUT_SEC) -> None:
  """Raises RayAddressError unless something accepts a TCP connection at host:port of `address`.

  ray.init retries an unreachable address for minutes without a word; one plain connect with a
  timeout says at once that nothing listens there. "auto" (and any address without a port) is
  left to ray.init, which fails fast when it finds no running instance.
  """
  host, sep, port = address.removeprefix("ray://").rpartition(":")
  if not sep or not host or not port.isdigit():
    return
  try:
    socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_sec).close()
  except OSError as e:
    raise RayAddressError(
      f"workers.ray_address={address!r}: cannot connect to {host}:{port} ({e.strerror or e}) within "
      f"{timeout_sec:.0f} s; expected a running Ray head there (`ray start --head` prints its address), "
      "'auto' for the cluster started on this machine, or '' to start a Ray instance of this run's own"
    ) from None


FORWARDED_ENV_PREFIX = "META_UNSUP_"
_CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


def forwarded_env(environ=None) -> dict[str, str]:
  """The project's environment variables (META_UNSUP_*) of this process that are set."""
  environ = os.environ if environ is None else environ
  return {k: v for k, v in environ.items() if k.startswith(FORWARDED_ENV_PREFIX) and v}


def init_ray(cfg) -> None:
  """Starts or joins Ray before this process runs any JAX computation.

  `workers.ray_address` "" starts a Ray instance of this run's own (address="local"): never
  one that `ray start` or another run left on this machine, which `ray.init()` would join.
  Joining a cluster, the project's environment variables set here (META_UNSUP_DATA_DIR, as
  --data_dir sets it, META_UNSUP_CACHE_DIR, META_UNSUP_JAX_CACHE, ...) are passed on to the
  actors (`forwarded_env`): on another node they would otherwise get that node's own, from
  the environment of its `ray start`. The folders they name must exist on every node.
  """
  import ray

  if ray.is_initialized():
    return
  address = cfg.workers.ray_address or None
  if address:
    check_ray_address(address)
    env = forwarded_env()
    try:
      ray.init(address=address, include_dashboard=False, runtime_env={"env_vars": env} if env else None)
    except ConnectionError as e:  # e.g. "auto" with no Ray instance on this machine
      raise RayAddressError(f"workers.ray_address={address!r}: {e}") from None
  else:
    ray.init(
      address="local",
      num_cpus=max(1, cfg.workers.num_workers) * cfg.workers.cpus_per_worker,
      include_dashboard=False,
      object_store_memory=1 << 30,
      log_to_driver=False,
    )


def _describe_task_error(error) -> tuple[str, str]:
  """(type name, message) of the exception raised in the actor, without the remote traceback."""
  import ray

  cause = getattr(error, "cause", None)
  if cause is None or isinstance(cause, ray.exceptions.RayError):
    # No original exception (e.g. an unpicklable one): its text carries the traceback.
    text = str(cause if cause is not None else error).strip()
    return type(cause if cause is not None else error).__name__, text.splitlines()[0] if text else ""
  return type(cause).__name__, str(cause)


def _lost_worker_errors(ray) -> tuple:
  """What a call raises when its actor's process or node is gone (not an error of its computation).

  A node that leaves a cluster kills its actors (RayActorError) and may take a finished
  result with it before it reached the learner (ObjectLostError, NodeDiedError): the worker
  is restarted, on whichever node has a free CPU, as for a crash.
  """
  e = ray.exceptions
  return (e.RayActorError, e.WorkerCrashedError, e.ObjectLostError, e.NodeDiedError)


def _actor_class():
  import ray

  @ray.remote
  class GradientActor:
    """One TaskWorker in its own process, pinned to one core before JAX is imported."""

    def __init__(
      self, cfg_json: str, seed: int, worker_id: int, pin: bool, jax_platforms: str, incarnation: int = 0
    ):
      if pin and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[worker_id % len(cores)]})
      if jax_platforms:
        # Before any backend starts: on a GPU machine every actor would otherwise claim the
        # GPU and pre-allocate most of its memory.
        import jax

        jax.config.update("jax_platforms", jax_platforms)
      # An error here is re-raised by each call: a failed constructor would otherwise kill
      # the actor with only a traceback, and the pool could not tell it from a crash.
      self.worker, self.init_error = None, None
      self.node_id = ray.get_runtime_context().get_node_id()  # tags results: which node made them
      try:
        self.worker = worker_lib.make_worker(cfg_json, seed, worker_id, incarnation)
      except Exception as e:  # pylint: disable=broad-except
        self.init_error = e

    def compute_gradients(self, theta, version: int) -> list[gradient_estimators.WorkerResult]:
      if self.init_error is not None:
        raise self.init_error
      return [
        dataclasses.replace(r, node_id=self.node_id) for r in self.worker.compute_gradients(theta, version)
      ]

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
    self.jax_platforms = str(cfg.workers.jax_platforms)
    gpus = float(config_compat.read(cfg.workers, "workers.gpus_per_worker"))
    # num_gpus: Ray gives the actor its own device(s) (CUDA_VISIBLE_DEVICES), so JAX there sees those alone.
    options = dict(num_cpus=cfg.workers.cpus_per_worker, num_gpus=gpus)
    if os.environ.get(worker_lib.WORKER_CLASS_ENV):  # a test's worker class: the actors import it too
      env = forwarded_env()
      env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)
      options["runtime_env"] = {"env_vars": env}
    self.actor_cls = _actor_class().options(**options)
    self.actors = {}
    self.in_flight = {}  # ObjectRef -> (worker_id, submitted_at)
    self.restarts = 0
    self.errors = ErrorTracker(num_workers, cfg.workers.max_consecutive_errors)
    self._generation = 0
    self._incarnations = collections.Counter()  # worker id -> actors started for it
    self._theta_ref = None
    self._theta_version = None
    for i in range(num_workers):
      self._start(i)

  def _start(self, worker_id: int) -> None:
    # A restarted worker gets a new seed, hence a fresh task stream.
    seed = self.seed + 1_000_003 * self._generation
    self._generation += 1
    incarnation = self._incarnations[worker_id]
    self._incarnations[worker_id] += 1
    self.actors[worker_id] = self.actor_cls.remote(
      self.cfg_json, seed, worker_id, self.pin, self.jax_platforms, incarnation
    )

  @property
  def worker_errors(self) -> int:
    return self.errors.count

  def _submit(self, worker_id: int) -> None:
    ref = self.actors[worker_id].compute_gradients.remote(self._theta_ref, self._theta_version)
    self.in_flight[ref] = (worker_id, time.monotonic())

  def results(self, theta, version: int) -> list[gradient_estimators.WorkerResult]:
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
        result = ray.get(ref)
      except _lost_worker_errors(ray):
        self._restart(wid)
        continue
      except ray.exceptions.RayTaskError as e:
        logging.debug("worker %d raised: %s", wid, e)  # with the remote traceback; --verbosity=1
        self.errors.failed(wid, *_describe_task_error(e))  # may stop the run
        self._replace(wid)  # its task may be the cause: a new actor, a new seed
        continue
      self.errors.succeeded(wid)
      out.extend(result)
    now = time.monotonic()
    for ref, (wid, since) in list(self.in_flight.items()):
      if now - since > self.timeout_sec:
        del self.in_flight[ref]
        self._restart(wid)
    return out

  def _restart(self, worker_id: int) -> None:
    self.restarts += 1
    self._replace(worker_id)

  def _replace(self, worker_id: int) -> None:
    try:
      self.ray.kill(self.actors[worker_id])
    except Exception:  # already gone
      pass
    self._start(worker_id)

  def get_state(self, tasks: bool = True) -> None:
    del tasks
    return None  # asynchronous: workers restart with fresh tasks on resume

  def set_state(self, saved) -> None:
    del saved

  def close(self) -> None:
    for actor in self.actors.values():
      try:
        self.ray.kill(actor)
      except Exception:
        pass
