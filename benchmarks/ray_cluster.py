"""Meta-gradients per second of meta-training on a two-node local Ray cluster and on one Ray instance.

  python -m meta_unsup_rules.benchmarks.ray_cluster --updates=300 --out=runs/bench/ray_cluster.json

Both setups run `distributed.trainer.meta_train` with the same config (configs/tiny.py, or
--config), the same number of workers and the same number of updates:

- "local": one Ray instance started by the run (`workers.ray_address = ""`), actors pinned
  to cores, as `scripts.meta_train` runs on one machine;
- "cluster": a head node and `--nodes` - 1 worker nodes (`ray.cluster_utils.Cluster`: one
  raylet, object store and set of worker processes per node, `--cpus_per_node` CPUs each)
  joined through `workers.ray_address`, as on a real cluster (no pinning).

Every node runs on this machine and shares its cores: the figure is the cluster's
overhead (a second object store, transfers between nodes, no pinning), not a speed-up.
The steady rate leaves out the first `--warmup` updates (each actor's first call compiles):
(meta-gradients received after update `warmup`) / (seconds between update `warmup` and
the last one), from metrics.jsonl. Each setup runs in a child process of its own (Ray must
start before a process runs JAX, and the two must not share a Ray).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

from meta_unsup_rules.util import run_record

SETUPS = ("local", "cluster")


def _config(module: str, num_workers: int, updates: int):
  from meta_unsup_rules.benchmarks import shapes  # (imports JAX: only in the child)

  cfg = shapes.load_config(module)
  cfg.workers.update(dict(num_workers=num_workers, mode="ray", ray_address="", result_timeout_sec=900.0))
  cfg.learner.update(dict(num_updates=updates, checkpoint_every=updates))
  # One hidden width: every actor compiles one task shape during the warm-up, none in the
  # measured window (the depth, classes and unroll length of configs/tiny.py are fixed already).
  cfg.task.width_min = cfg.task.width_max
  return cfg


def steady_rate(records: list[dict], warmup: int) -> dict:
  """Meta-gradients/s and updates/s between update `warmup` and the last (metrics.jsonl records)."""
  first = next(r for r in records if r["step"] == warmup)
  last = records[-1]
  sec = last["elapsed_sec"] - first["elapsed_sec"]
  grads = last["meta_grads_total"] - first["meta_grads_total"]
  return {
    "meta_grads_per_sec": grads / sec,
    "updates_per_sec": (last["step"] - first["step"]) / sec,
    "measured_meta_grads": int(grads),
    "measured_sec": sec,
  }


def run_setup(setup: str, args) -> dict:
  """One meta-training run on `setup`; returns its figures (call in a fresh process)."""
  import ray

  from meta_unsup_rules.distributed import ray_pool, trainer

  cfg = _config(args.config, args.workers, args.updates)
  cluster = None
  if setup == "cluster":
    from ray.cluster_utils import Cluster

    cluster = Cluster(
      initialize_head=True, head_node_args=dict(num_cpus=args.cpus_per_node, include_dashboard=False)
    )
    try:
      from ray._common.utils import reset_ray_address  # private; Ray 2.60

      reset_ray_address()  # no address-less ray.init() elsewhere on this machine joins it
    except ImportError:
      pass
    for _ in range(args.nodes - 1):
      cluster.add_node(num_cpus=args.cpus_per_node)
    cluster.wait_for_nodes()
    cfg.workers.ray_address = cluster.address
  t0 = time.monotonic()
  try:
    ray_pool.init_ray(cfg)
    nodes = len([n for n in ray.nodes() if n["Alive"]])
    with tempfile.TemporaryDirectory() as workdir:
      summary = trainer.meta_train(cfg, workdir, progress=False)
      text = (pathlib.Path(workdir) / "metrics.jsonl").read_text()
      records = [json.loads(line) for line in text.splitlines()]
  finally:
    ray.shutdown()
    if cluster is not None:
      cluster.shutdown()
  return {
    "setup": setup,
    "nodes": nodes,
    "workers": int(cfg.workers.num_workers),
    "pinned": not cfg.workers.ray_address,
    "updates": int(summary["step"]),
    "batch_size": int(cfg.learner.batch_size),
    "meta_grads": int(summary["meta_grads"]),
    "wall_sec": time.monotonic() - t0,
    "warmup_updates": args.warmup,
    "worker_restarts": int(summary["worker_restarts"]),
    "stale_dropped": int(summary["stale"]),
    **steady_rate(records, args.warmup),
  }


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--config", default="configs.tiny", help="config module (get_config())")
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--updates", type=int, default=300)
  p.add_argument("--warmup", type=int, default=20, help="updates left out of the steady rate")
  p.add_argument("--nodes", type=int, default=2)
  p.add_argument("--cpus_per_node", type=int, default=1)
  p.add_argument("--setups", default=",".join(SETUPS))
  p.add_argument("--out", default=None, help="JSON file for both setups' figures")
  p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args._child:  # one setup, in this process
    print(json.dumps(run_setup(args._child, args)))
    return 0
  out = {}
  for setup in args.setups.split(","):
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--out")]
    cmd = [sys.executable, "-m", "meta_unsup_rules.benchmarks.ray_cluster", *forwarded, f"--_child={setup}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
      print(done.stderr[-3000:], file=sys.stderr)
      return done.returncode
    out[setup] = json.loads(done.stdout.strip().splitlines()[-1])
    r = out[setup]
    print(
      f"{setup}: {r['nodes']} node(s), {r['workers']} workers, {r['updates']} updates: "
      f"{r['meta_grads_per_sec']:.3f} meta-grads/s steady ({r['measured_meta_grads']} in "
      f"{r['measured_sec']:.0f} s after update {r['warmup_updates']}), wall {r['wall_sec']:.0f} s"
    )
  if "local" in out and "cluster" in out:
    out["cluster_over_local"] = out["cluster"]["meta_grads_per_sec"] / out["local"]["meta_grads_per_sec"]
    print(f"cluster / local: {out['cluster_over_local']:.3f}")
  if args.out:
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_record.with_record(out), indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
