r"""All seeds of an evaluation in lockstep, each method's computation vmapped over the seeds.

`evaluation.batch_seeds="vmap"`. Why: one seed is a small computation (an inner batch of
32 on a 4×128+32 network); where its kernels are dominated by launch overheads (an
accelerator) S seeds cost about as much as one. On the 2-core CPU this project runs on
they are not, and this mode is slower than one seed after another (runner.py gives the
numbers; "threads" is the default there). Every seed is drawn and built exactly as in the
per-seed path (seed_setup.setup_seed: base model, θ, baselines, stream, support set, test
subset; seed_setup.readout_plan: the BN passes and readouts of each point), and only the
computation is batched (util/batched_calls.py):

  * per method and chunk of the stream, the S seeds' training calls (`advance_call`,
    base_models/baselines/mlp_baseline.py: the learned rule, Hebbian, VAE, contrastive,
    protonet) run as one vmapped call on the stacked streams [S, steps, B, D];
  * per method, point and BN pass of the readouts, the S seeds' features calls run as one
    vmapped call (the shared test chunks passed once, the support sets stacked);
  * the readouts (ridge, logistic) are fitted per seed in NumPy, as in the per-seed path.

A method without such calls (PCA, NumPy), or whose calls do not stack, runs seed by seed
inside the same loop; the supervised baseline trains at build time, per seed, then its
features are batched. Results equal the per-seed path's to float rounding (vmapped
kernels may sum in another order; tests/test_evaluate_batched.py states the tolerance).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from meta_unsup_rules.evaluation import protocols, stats
from meta_unsup_rules.evaluation import seeds as seed_setup
from meta_unsup_rules.util import batched_calls


def _advance_all(runners: Sequence, unlabelled: Sequence[np.ndarray]) -> None:
  """Every seed's `advance`, its training calls run as one computation where they stack."""
  if not all(hasattr(r, "advance_call") for r in runners):
    for runner, u in zip(runners, unlabelled):
      runner.advance(u)
    return
  calls = [r.advance_call(u) for r, u in zip(runners, unlabelled)]
  todo = [(r, c) for r, c in zip(runners, calls) if c is not None]
  outputs = batched_calls.run_all([c for _, c in todo])
  for (runner, _), output in zip(todo, outputs):
    runner.absorb(output)


def _features_all(runners: Sequence, plans: Sequence[seed_setup.ReadoutPlan]) -> list[list[np.ndarray]]:
  """[seed][BN pass] features of every seed's plan, each pass run for all seeds at once."""
  n = len(plans[0].batches)
  if not all(hasattr(r, "features_call") for r in runners) or any(len(p.batches) != n for p in plans):
    return [[np.asarray(r.features(b)) for b in p.batches] for r, p in zip(runners, plans)]
  per_pass = [
    batched_calls.run_all([r.features_call(p.batches[j]) for r, p in zip(runners, plans)]) for j in range(n)
  ]
  return [[np.asarray(per_pass[j][i]) for j in range(n)] for i in range(len(runners))]


def evaluate_seeds(
  task,
  cfg,
  seeds: Sequence[int],
  methods: Sequence[str],
  points: Sequence[int],
  theta_fn: Callable | None,
  log: Callable[[str], None],
  test_set,
) -> list[stats.SeedResult]:
  """runner.evaluate_seed for every seed of `seeds`, each method's computation batched."""
  ecfg = cfg.evaluation
  setups = [seed_setup.setup_seed(task, cfg, s, methods, theta_fn, test_set) for s in seeds]
  readouts = protocols.readout_names(ecfg)
  batch = int(cfg.unroll.inner_batch_size)
  done = 0
  for point in points:
    chunk = point - done
    unlabelled = [task.unlabelled_batches(s.stream, chunk, batch) for s in setups] if chunk else None
    plans = [seed_setup.readout_plan(task, cfg, s.data, s.seed, point) for s in setups]
    for m in methods:
      runners = [s.runners[m] for s in setups]
      t0 = time.time()
      if chunk:
        _advance_all(runners, unlabelled)
      features = _features_all(runners, plans)
      shared = (time.time() - t0) / len(setups)  # the batched part, split evenly over the seeds
      for s, plan, f in zip(setups, plans, features):
        t1 = time.time()
        s.record(m, plan.fit(f))
        s.seconds[m] += shared + time.time() - t1
    done = point
    for s in setups:  # one line per seed and point, as runner.evaluate_seed logs
      log(s.log_line(point, readouts))
  return [s.result(ecfg) for s in setups]
