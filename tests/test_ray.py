"""Ray end to end: two pinned actors feed the learner; a killed or raising actor is replaced."""

import json
import time

import numpy as np
import pytest

from meta_unsup_rules.distributed import pools, ray_pool, trainer
from tests.test_worker_faults import faults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cfg(tiny_cfg):
  import ray

  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.workers.update(dict(num_workers=2, mode="ray", result_timeout_sec=600.0))
  # address="local": a Ray of its own, never a cluster running on this machine (tests/test_ray_cluster.py).
  ray.init(
    address="local", num_cpus=2, include_dashboard=False, object_store_memory=1 << 30, log_to_driver=False
  )
  yield cfg
  ray.shutdown()


def test_meta_training_with_two_ray_workers(ray_cfg, tmp_path):
  cfg = ray_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=3, batch_size=2, checkpoint_every=100))
  summary = trainer.meta_train(cfg, tmp_path, progress=False)
  assert summary["step"] == 3 and np.isfinite(summary["meta_loss"])
  records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [1, 2, 3]
  assert all(r["meta_grads_per_sec"] > 0 for r in records)


def test_killed_worker_is_replaced_and_training_goes_on(ray_cfg):
  import ray

  pool = ray_pool.RayPool(ray_cfg, seed=5, num_workers=2, poll_sec=0.5)
  try:
    theta = _theta(ray_cfg)
    got = []
    while len(got) < 2:
      got += pool.results(theta, 0)
    assert ray_cfg.workers.jax_platforms == "cpu" and {r.backend for r in got} == {"cpu"}
    ray.kill(pool.actors[0])
    after = []
    deadline = time.monotonic() + 600
    while 0 not in {r.worker_id for r in after} and time.monotonic() < deadline:
      after += pool.results(theta, 0)  # worker 1 keeps delivering meanwhile
    assert pool.restarts >= 1
    assert all(np.isfinite(r.loss) for r in after)
    assert 0 in {r.worker_id for r in after}, "the replaced worker 0 never delivered"
  finally:
    pool.close()


def test_an_actor_that_raises_is_replaced_counted_and_training_goes_on(
  ray_cfg, tmp_path, caplog, monkeypatch
):
  cfg = ray_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=3, batch_size=2, checkpoint_every=100))
  faults(monkeypatch, "raise_once:worker=0")
  with caplog.at_level("WARNING"):
    summary = trainer.meta_train(cfg, tmp_path, progress=False)
  assert summary["step"] == 3 and summary["worker_errors"] == 1
  assert summary["worker_restarts"] == 0  # an error is not a crash
  records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [1, 2, 3] and records[-1]["worker_errors"] == 1
  logged = [r.getMessage() for r in caplog.records if "raised" in r.getMessage()]
  assert len(logged) == 1 and "worker 0 raised InjectedFault: injected fault" in logged[0]
  assert "Traceback" not in logged[0]  # the type and message, not the remote traceback


def test_the_same_error_from_every_actor_stops_the_pool(ray_cfg, monkeypatch):
  cfg = ray_cfg.copy_and_resolve_references()
  cfg.workers.update(dict(max_consecutive_errors=2))
  faults(monkeypatch, "raise_always")
  pool = ray_pool.RayPool(cfg, seed=7, num_workers=2, poll_sec=0.5)
  try:
    theta = _theta(cfg)
    deadline = time.monotonic() + 600
    with pytest.raises(pools.WorkerConfigError, match="InjectedFault: injected fault"):
      while time.monotonic() < deadline:
        assert not pool.results(theta, 0)
    assert pool.worker_errors >= 4 and pool.restarts == 0  # 2 each, more if one was faster
  finally:
    pool.close()


def _theta(cfg):
  import jax

  from meta_unsup_rules.learned_update import rule

  return jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(0), cfg.rule))
