"""A real multi-node Ray run: meta-training joins a two-node cluster, loses a node, gains one.

`ray.cluster_utils.Cluster` starts a head node and a worker node on this machine, one CPU
each (separate raylets and object stores, the same processes as `ray start --head` and
`ray start --address=...`). Meta-training joins it through `workers.ray_address`, as
`--ray_address=HOST:PORT` does, with two workers: one actor on each node. Mid-run the
worker node is removed: its actor dies, the pool restarts that worker (counted in
`worker_restarts`) and the learner goes on with the head node's worker alone while the
replacement waits for a free CPU. A new node then joins: the replacement is scheduled there
and its meta-gradients reach the learner. The run ends as on Ctrl-C (final checkpoint, θ
export; SIGTERM is Ray's in this process: `Cluster`'s nodes install their own handler).

Fast tests: joining a cluster forwards the project's environment variables (data and cache
folders) to the actors; a call lost with its node (actor died, result object lost, node died)
restarts the worker and is not counted as a worker error.
"""

import json
import os
import signal
import time

import numpy as np
import pytest

from meta_unsup_rules.distributed import gradient_estimators, pools, ray_pool, trainer

# A phase that takes longer fails the test instead of hanging it. The first includes each
# actor's compile of the unroll (minutes on a shared core when JAX's cache is cold).
PHASE_SEC = {"two_nodes": 900.0, "one_node": 300.0, "rejoined": 600.0}


class _Scenario:
  """The trainer's RayPool, which records each result's worker and node and steps the cluster.

  Phases: "two_nodes" until both workers delivered from two different nodes, then the
  worker node is removed; "one_node" until the lost worker was restarted and the learner
  made 2 updates on the head node's worker alone, then a new node is added; "rejoined"
  until a meta-gradient from the new node arrived, then the run is stopped (SIGINT, as Ctrl-C).
  """

  def __init__(self, pool, cluster, worker_node):
    self.pool, self.cluster, self.worker_node = pool, cluster, worker_node
    self.new_node = None
    self.phase = "two_nodes"
    self.phase_started = time.monotonic()
    self.seen = []  # (phase, worker id, node id, θ version it was computed with)
    self.steps = {}  # phase -> learner step when it began
    self.times = {"two_nodes": time.monotonic()}  # phase -> when it began
    self.lost_worker = None
    self.failure = None

  def __getattr__(self, name):  # restarts, worker_errors, get_state, set_state, close
    return getattr(self.pool, name)

  def _enter(self, phase: str, step: int) -> None:
    self.phase, self.phase_started = phase, time.monotonic()
    self.steps[phase] = step
    self.times[phase] = self.phase_started

  def results(self, theta, version: int) -> list[dict]:
    out = self.pool.results(theta, version)
    self.seen += [(self.phase, r.worker_id, r.node_id, r.theta_version) for r in out]
    limit = PHASE_SEC.get(self.phase)
    if limit is not None and time.monotonic() - self.phase_started > limit:
      self.failure = f"phase {self.phase!r} took over {limit:.0f} s; results so far: {self.seen}"
      self._enter("done", version)
      signal.raise_signal(signal.SIGINT)  # the trainer's graceful stop (Ctrl-C): final checkpoint, θ export
      return out

    now = [(w, n) for p, w, n, _ in self.seen if p == self.phase]
    if self.phase == "two_nodes" and len({n for _, n in now}) == 2 and len({w for w, _ in now}) == 2:
      self.lost_worker = next(w for w, n in now if n == self.worker_node.node_id)
      self.cluster.remove_node(self.worker_node)  # kills its raylet, object store and actor
      self._enter("one_node", version)
    elif self.phase == "one_node" and self.pool.restarts >= 1 and version >= self.steps["one_node"] + 2:
      self.new_node = self.cluster.add_node(num_cpus=1)
      self._enter("rejoined", version)
    elif self.phase == "rejoined" and any(n == self.new_node.node_id for _, n in now):
      self._enter("done", version)
      signal.raise_signal(signal.SIGINT)  # as Ctrl-C: the trainer writes a final checkpoint and exports θ
    return out


def _forget_current_cluster() -> None:
  """Removes the address `Cluster` wrote to /tmp/ray/ray_current_cluster: an address-less
  `ray.init()` of another process on this machine would otherwise join this test's cluster."""
  try:
    from ray._common.utils import reset_ray_address  # private; Ray 2.60
  except ImportError:
    return
  reset_ray_address()


@pytest.fixture
def two_node_cluster():
  import ray
  from ray.cluster_utils import Cluster

  if ray.is_initialized():  # a Ray of an earlier test module
    ray.shutdown()
  cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
  try:
    _forget_current_cluster()
    worker_node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker_node
  finally:
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
# Adding a node mid-run starts its processes (fork + exec) from this process, where JAX runs.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_meta_training_survives_a_node_leaving_and_uses_a_node_joining(
  two_node_cluster, tiny_cfg, tmp_path, monkeypatch
):
  cluster, worker_node = two_node_cluster
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.workers.update(dict(num_workers=2, mode="ray", ray_address=cluster.address, result_timeout_sec=600.0))
  cfg.learner.update(dict(num_updates=10_000, batch_size=2, checkpoint_every=10_000))
  # One task shape: every actor compiles the same meta-gradient, so the replacement on the new
  # node reads it from JAX's compilation cache instead of compiling another shape.
  cfg.task.width_min = cfg.task.width_max
  ray_pool.init_ray(cfg)  # joins the cluster, as scripts.meta_train does
  scenarios, original_make_pool = [], pools.make_pool

  def make_pool(c):
    pool = original_make_pool(c)
    assert isinstance(pool, ray_pool.RayPool) and not pool.pin  # a cluster's nodes schedule their CPUs
    scenarios.append(_Scenario(pool, cluster, worker_node))
    return scenarios[-1]

  monkeypatch.setattr(pools, "make_pool", make_pool)  # the trainer calls pools.make_pool
  t0 = time.monotonic()
  summary = trainer.meta_train(cfg, tmp_path, progress=False, max_seconds=sum(PHASE_SEC.values()) + 60)
  wall = time.monotonic() - t0
  (s,) = scenarios
  assert s.failure is None, s.failure
  assert s.phase == "done", f"stopped in phase {s.phase!r} after {wall:.0f} s; results: {s.seen}"

  head = cluster.head_node.node_id
  by_phase = {p: [(w, n) for q, w, n, _ in s.seen if q == p] for p in ("two_nodes", "one_node", "rejoined")}
  assert {n for _, n in by_phase["two_nodes"]} == {head, worker_node.node_id}
  # With one node left, every meta-gradient came from it, and the learner kept updating.
  assert by_phase["one_node"] and {n for _, n in by_phase["one_node"]} == {head}
  assert s.steps["rejoined"] >= s.steps["one_node"] + 2
  # The lost worker was restarted once (no error: a lost node is not the task's fault) and
  # its replacement delivered from the new node.
  assert summary["worker_restarts"] == 1 and summary["worker_errors"] == 0
  assert (s.lost_worker, s.new_node.node_id) in by_phase["rejoined"]
  assert summary["step"] >= s.steps["rejoined"] and np.isfinite(summary["meta_loss"])

  records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == list(range(1, summary["step"] + 1))
  assert records[0]["worker_restarts"] == 0 and records[-1]["worker_restarts"] == 1  # logged as it ran
  assert all(r["worker_errors"] == 0 and np.isfinite(r["meta_loss"]) for r in records)
  phases = ", ".join(f"{p} at {t - t0:.0f} s (update {s.steps.get(p, 0)})" for p, t in s.times.items())
  run = f"{summary['step']} updates, {summary['meta_grads']} meta-gradients in {wall:.0f} s"
  print(f"\n2-node cluster run: {run}; {phases}")


def test_joining_a_cluster_passes_the_projects_environment_to_the_actors(tiny_cfg, monkeypatch):
  import ray

  calls = []
  monkeypatch.setattr(ray, "is_initialized", lambda: False)
  monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
  monkeypatch.setenv("META_UNSUP_DATA_DIR", "/data/meta_unsup")
  monkeypatch.setenv("META_UNSUP_JAX_CACHE", "")  # empty: as if unset
  monkeypatch.setenv("NOT_OURS", "x")
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.workers.update(dict(num_workers=2, mode="ray", ray_address="10.0.0.1:6379"))
  ray_pool.init_ray(cfg)
  cfg.workers.ray_address = ""
  ray_pool.init_ray(cfg)
  joined, local = calls
  assert joined["address"] == "10.0.0.1:6379"
  env = joined["runtime_env"]["env_vars"]
  assert env["META_UNSUP_DATA_DIR"] == "/data/meta_unsup"
  assert env["META_UNSUP_CACHE_DIR"] == os.environ["META_UNSUP_CACHE_DIR"]  # conftest's
  assert "META_UNSUP_JAX_CACHE" not in env and "NOT_OURS" not in env
  # A local Ray is this run's own (never a cluster found on the machine) and inherits the environment.
  assert local["address"] == "local" and "runtime_env" not in local


def _result(worker_id: int) -> gradient_estimators.WorkerResult:
  fields = dict(grads={}, loss=1.0, metrics={}, theta_version=0, dataset="omniglot", inner_steps=2)
  fields.update(task_step=2, worker_id=worker_id, seconds=0.0, backend="cpu", node_id="node")
  return gradient_estimators.WorkerResult(**fields)


class _FakeActor:
  def __init__(self, worker_id: int, incarnation: int):
    self.compute_gradients = self
    self.ref = f"call-{worker_id}-{incarnation}"

  def remote(self, theta_ref, version):
    del theta_ref, version
    return self.ref


class _FakeRay:
  """The part of `ray` that RayPool.results uses; the first call of worker 0 fails with `error`."""

  def __init__(self, error):
    import ray

    self.exceptions, self.error, self.killed = ray.exceptions, error, []

  def put(self, value):
    return value

  def wait(self, refs, num_returns, timeout):
    del num_returns, timeout
    return list(refs), []

  def get(self, ref):
    if ref == "call-0-0":
      raise self.error
    return [_result(worker_id=int(ref.split("-")[1]))]

  def kill(self, actor):
    self.killed.append(actor.ref)


@pytest.mark.parametrize("lost", ["actor_died", "object_lost", "node_died"])
def test_a_call_lost_with_its_node_restarts_the_worker_without_an_error(tiny_cfg, monkeypatch, lost):
  from ray import exceptions

  error = {
    "actor_died": exceptions.ActorDiedError(),
    "object_lost": exceptions.ObjectLostError("ab" * 14, None, ""),
    "node_died": exceptions.NodeDiedError("the node left"),
  }[lost]
  started = []

  def start(self, worker_id):
    self.actors[worker_id] = _FakeActor(worker_id, sum(w == worker_id for w in started))
    started.append(worker_id)

  monkeypatch.setattr(ray_pool.RayPool, "_start", start)
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.workers.update(dict(num_workers=2, mode="ray"))
  pool = ray_pool.RayPool(cfg, seed=0, num_workers=2)
  pool.ray = _FakeRay(error)
  out = pool.results(theta={}, version=0)
  assert [r.worker_id for r in out] == [1]  # worker 1 delivered; worker 0's call was lost
  assert started == [0, 1, 0] and pool.ray.killed == ["call-0-0"]  # worker 0 restarted
  assert pool.restarts == 1 and pool.worker_errors == 0
