"""Meta-gradients per second of the Ray worker pool with 1 and 2 actors, and the learner's share.

The rule's own speed (`benchmarks.meta_gradient`) bounds what a worker can deliver; this
part measures what the meta-training loop actually gets out of `distributed.ray_pool.RayPool`
feeding `distributed.learner.Learner`, so the overheads of actors, transfers and the
central Adam step show up. The actors run the config's rule on one fixed task shape.

Ray must start before this process runs any JAX computation (its workers are spawned
from a driver whose JAX runtime has not started threads yet): `ray_scaling` starts it
first, and `benchmarks.run.run_benchmark` calls `ray_scaling` before anything else.
Importing JAX is harmless; running it is not.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.distributed import gradient_estimators, ray_pool
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.learned_update import rule

RAY_WORKER_COUNTS = (1, 2)


def start_ray(num_cpus: int) -> bool:
  """Starts a Ray instance of this process's own; False if Ray was already initialised.

  address="local": always a new instance, never one already running on this machine
  (e.g. a meta-training run's), whatever RAY_ADDRESS or /tmp/ray say.
  """
  import ray  # pylint: disable=import-outside-toplevel  # slow to import; only this part needs it

  if ray.is_initialized():
    return False
  ray.init(
    address="local",
    num_cpus=int(num_cpus),
    include_dashboard=False,
    object_store_memory=1 << 30,
    log_to_driver=False,
    namespace="meta_unsup_benchmark",
  )
  return True


def ray_task_config(base_module: str = "configs.local"):
  """The config's own rule and task distribution pinned to one shape (one compile per actor).

  The largest architecture (depth_max x width_max), omniglot where the config has it (the
  smallest data set to load), one number of classes and the first unroll length.
  """
  cfg = shapes_lib.load_config(base_module)
  t = cfg.task
  dataset = "omniglot" if "omniglot" in tuple(t.datasets) else tuple(t.datasets)[0]
  cfg.task.update(
    dict(
      datasets=(dataset,),
      dataset_weights=(1.0,),
      depth_min=int(t.depth_max),
      width_min=int(t.width_max),
      width_grid=1,
      num_classes_choices=(int(max(t.num_classes_choices)),),
    )
  )
  cfg.unroll.lengths = (int(tuple(cfg.unroll.lengths)[0]),)
  cfg.workers.update(dict(num_workers=max(RAY_WORKER_COUNTS), mode="ray", ray_address="", cpus_per_worker=1))
  return cfg


def ray_scaling(
  cfg,
  worker_counts=RAY_WORKER_COUNTS,
  measure_sec: float = 15.0,
  min_results: int = 4,
  warmup_results: int = 1,
  deadline_sec: float = 900.0,
  seed: int = 0,
  log=print,
) -> dict:
  """Meta-gradients per second of RayPool with 1 and 2 pinned actors, and the learner's share.

  Starts Ray (`start_ray`) unless it is initialised: call it before this process runs any
  JAX computation. Throughput is (results - 1) / (last arrival - first arrival) after every
  actor delivered `warmup_results` (discarded: the first includes compilation) and the
  learner applied once (compiles Adam's step). The learner accepts every result and
  applies an update every `learner.batch_size`; `learner_share` is the time spent in
  `Learner.apply` over the wall time of the measured window of the run with the most
  workers. `parallel_efficiency` = throughput x median worker seconds per gradient /
  workers: 1.0 means no time lost outside `compute_gradient` (it separates overheads from
  changes in the per-gradient cost itself between the runs). Each phase gives up after
  `deadline_sec` (RuntimeError) rather than hang.
  """
  import ray  # pylint: disable=import-outside-toplevel  # see start_ray

  cfg = cfg.copy_and_resolve_references()
  cfg.workers.num_workers = max(worker_counts)
  started = start_ray(cfg.workers.num_workers * cfg.workers.cpus_per_worker)
  try:
    # The first JAX computation of the process: after Ray has started.
    theta = jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(seed), cfg.rule))
    combine = gradient_estimators.make_estimator(cfg).combine
    learner = learner_lib.Learner(cfg.learner, theta, combine=combine)
    t = cfg.task
    out = {
      "workers": {},
      "task": {
        "datasets": list(t.datasets),
        "image_size": int(t.image_size),
        "layer_widths": [int(t.width_max)] * int(t.depth_max) + [int(cfg.base_model.top_width)],
        "num_classes": list(t.num_classes_choices),
        "k": list(cfg.unroll.lengths),
        "inner_batch_size": int(cfg.unroll.inner_batch_size),
        "compute_h_size": int(cfg.rule.compute_h_size),
      },
      "learner_batch_size": int(cfg.learner.batch_size),
    }
    for n in worker_counts:
      out["workers"][str(n)] = _ray_run(
        cfg, learner, n, seed, measure_sec, min_results, warmup_results, deadline_sec, log
      )
  finally:
    if started:
      ray.shutdown()
  lo, hi = out["workers"][str(min(worker_counts))], out["workers"][str(max(worker_counts))]
  ratio = None
  if lo["meta_grads_per_sec"] and hi["meta_grads_per_sec"]:
    ratio = hi["meta_grads_per_sec"] / lo["meta_grads_per_sec"]
  out["ray_scaling_2_over_1"] = ratio
  out["learner_share"] = hi["learner_share"]
  out["learner_sec_per_update"] = hi["learner_apply_sec"] / max(hi["learner_updates"], 1)
  return out


def _ray_run(
  cfg,
  learner,
  n: int,
  seed: int,
  measure_sec: float,
  min_results: int,
  warmup_results: int,
  deadline_sec: float,
  log,
) -> dict:
  t_start = time.perf_counter()
  pool = ray_pool.RayPool(cfg, seed, n, poll_sec=0.05)
  try:
    delivered = {i: 0 for i in range(n)}
    while min(delivered.values()) < warmup_results or learner.step < 1:
      if time.perf_counter() - t_start > deadline_sec:
        raise RuntimeError(
          f"Ray warm-up with {n} worker(s): no steady state after {deadline_sec:.0f} s "
          f"(results per worker {delivered}, learner step {learner.step})"
        )
      for r in pool.results(learner.theta, learner.step):
        delivered[r.worker_id] += 1
        learner.accept(r)
      if learner.ready:
        learner.apply()
    warm_sec = time.perf_counter() - t_start
    learner.buffer = []
    arrivals, seconds, apply_sec, updates = [], [], 0.0, 0
    t0 = time.perf_counter()
    while len(arrivals) < min_results or time.perf_counter() - t0 < measure_sec:
      if time.perf_counter() - t0 > deadline_sec:
        raise RuntimeError(f"Ray with {n} worker(s): {len(arrivals)} results in {deadline_sec:.0f} s")
      got = pool.results(learner.theta, learner.step)
      now = time.perf_counter()
      for r in got:
        arrivals.append(now)
        seconds.append(r.seconds)
        learner.accept(r)
      if learner.ready:
        t = time.perf_counter()
        learner.apply()
        apply_sec += time.perf_counter() - t
        updates += 1
    wall = time.perf_counter() - t0
    window = arrivals[-1] - arrivals[0]
    rate = (len(arrivals) - 1) / window if window > 0 else None
    median = float(np.median(seconds))
    log(
      f"  {n} worker(s): {rate or float('nan'):.3f} meta-grads/s ({len(arrivals)} results, "
      f"warm-up incl. compile {warm_sec:.0f} s)"
    )
    return {
      "meta_grads_per_sec": rate,
      "results": len(arrivals),
      "window_sec": window,
      "warmup_sec": warm_sec,
      "worker_sec_per_meta_grad": median,
      "parallel_efficiency": rate * median / n if rate else None,
      "learner_updates": updates,
      "learner_apply_sec": apply_sec,
      "learner_share": apply_sec / wall,
      "restarts": pool.restarts,
    }
  finally:
    pool.close()
