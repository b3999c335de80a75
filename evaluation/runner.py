r"""The evaluation run: every method on every seed, scored along the inner loop (spec §6–7).

For each seed s (seeds cfg.seed, cfg.seed+1, ...):
  * one fresh base model, `base_models.init(fold_in(PRNGKey(s), 1), ...)`, shared as the
    starting point of every method (learned rule, random init, VAE encoder, supervised,
    contrastive, Hebbian and protonet bodies), so that at step 0 they are the identical
    network;
  * θ for `--theta=random`: `init_theta(PRNGKey(s), cfg.rule)`;
  * each baseline's PRNG key: `fold_in(PRNGKey(s), crc32(key_name))`, from its name (its
    `key_name`: protonet_permuted shares the protonet's), so that adding, removing or
    reordering methods changes no other method's numbers;
  * one unlabelled stream (batch `cfg.unroll.inner_batch_size`) fed to every method in
    lockstep, in chunks of `eval_every` steps (one compiled shape per chunk length);
  * one class-balanced support set and one fixed test subset used at every evaluation
    point and by every method, so comparisons are paired;
  * at steps 0, M, 2M, ..., N: the readouts of the protocol (protocols.py).
Aggregation over seeds: stats.py. `per_seed_info[seed]["num_labels"]` records, per
readout, how many labelled examples it was fitted on (per episode for the episodic
protocol), and per method what it reports about its own training (`diagnostics`).
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from typing import Callable, Sequence

import jax
import numpy as np

import base_models
from base_models import baselines as bl
from evaluation import protocols, stats
from evaluation.learned_rule import LearnedRule

METHODS = ("learned",) + bl.BASELINES


def eval_points(inner_steps: int, eval_every: int) -> list[int]:
  """0, M, 2M, ..., N (N always included)."""
  if inner_steps < 0 or eval_every < 1:
    raise ValueError(f"need inner_steps >= 0 and eval_every >= 1, got {inner_steps}, {eval_every}")
  points = list(range(0, inner_steps + 1, eval_every))
  if points[-1] != inner_steps:
    points.append(inner_steps)
  return points


def method_key(seed_key, name: str):
  """A method's PRNG key, from its name: independent of which other methods run."""
  return jax.random.fold_in(seed_key, zlib.crc32(name.encode()))


def seed_keys(seed: int) -> dict:
  """{"theta", "base", <baseline>...}: the PRNG keys of one seed (module docstring)."""
  root = jax.random.PRNGKey(seed)
  return {
    "theta": root,
    "base": jax.random.fold_in(root, 1),
    **{m: method_key(root, bl.key_name(m)) for m in bl.BASELINES},
  }


@dataclasses.dataclass
class LabelledData:
  """One seed's labelled examples, the same for every method so that comparisons are paired."""

  support: tuple  # (x, y): the fewshot support set
  test: tuple  # (x, y): the fixed test subset
  pool: tuple | None = None  # linear_probe / semi_supervised: (x, y) of all their subsets
  positions: dict | None = None  # readout-name suffix -> that subset's positions in the pool

  def num_labels(self, ecfg) -> dict:
    """{readout name: labelled examples it is fitted on} (per episode when episodic)."""
    names = protocols.readout_names(ecfg)
    if ecfg.protocol == "episodic":
      return {r: int(ecfg.n_way) * int(ecfg.k_shot) for r in names}
    if ecfg.protocol == "fewshot":
      return {r: len(self.support[1]) for r in names}
    return {r + sfx: len(pos) for sfx, pos in self.positions.items() for r in protocols.READOUTS}


def labelled_data(task, ecfg, seed: int, test_set) -> LabelledData:
  support = task.support_set(np.random.default_rng([seed, 1]), int(ecfg.support_per_class))
  data = LabelledData(support, test_set)
  if ecfg.protocol in ("linear_probe", "semi_supervised"):
    subsets = protocols.labelled_subsets(task.y_train, ecfg, np.random.default_rng([seed, 4]))
    pool = np.unique(np.concatenate(list(subsets.values())))
    data.pool = task.x_train[pool], task.y_train[pool]
    # Positions in the pool: the labelled features are computed once per point for all subsets.
    data.positions = {sfx: np.searchsorted(pool, idx) for sfx, idx in subsets.items()}
  return data


def score(features_fn: Callable, task, cfg, data: LabelledData, seed: int, point: int) -> dict:
  """{readout name: accuracy (episodic: list over episodes)} of one method at one point."""
  ecfg = cfg.evaluation
  ridge_lambda, logistic_c = float(cfg.meta_objective.ridge_lambda), float(ecfg.logistic_c)
  num_classes, chunk = task.num_classes, int(ecfg.test_chunk)
  if ecfg.protocol == "episodic":
    return protocols.episodic_accuracies(
      features_fn,
      task,
      np.random.default_rng([seed, 2, point]),
      int(ecfg.n_way),
      int(ecfg.k_shot),
      int(ecfg.n_query),
      int(ecfg.episodes),
      ridge_lambda,
      logistic_c,
    )
  x_test, y_test = data.test
  f_test = protocols.batched_features(features_fn, x_test, chunk)
  if ecfg.protocol == "fewshot":
    return protocols.readout_accuracies(
      features_fn(data.support[0]), data.support[1], f_test, y_test, num_classes, ridge_lambda, logistic_c
    )
  x_pool, y_pool = data.pool
  f_pool = protocols.batched_features(features_fn, x_pool, chunk)
  out = {}
  for sfx, pos in data.positions.items():
    fitted = protocols.readout_accuracies(
      f_pool[pos], y_pool[pos], f_test, y_test, num_classes, ridge_lambda, logistic_c
    )
    out.update({r + sfx: acc for r, acc in fitted.items()})
  return out


def evaluate_seed(
  task,
  cfg,
  seed: int,
  methods: Sequence[str],
  points: Sequence[int],
  theta_fn: Callable | None = None,
  log: Callable[[str], None] = lambda s: None,
  test_set=None,
) -> stats.SeedResult:
  """Runs every method on seed `seed` and scores it at every point."""
  ecfg = cfg.evaluation
  keys = seed_keys(seed)
  base_cfg = cfg.base_model
  state = base_models.init(keys["base"], task.input_dim, base_models.layer_widths(base_cfg), base_cfg)
  rng_stream = np.random.default_rng([seed, 0])
  data = labelled_data(
    task, ecfg, seed, test_set if test_set is not None else task.test_set(int(ecfg.max_test))
  )
  batch = int(cfg.unroll.inner_batch_size)
  first_chunk = task.unlabelled_batches(np.random.default_rng([seed, 3]), 1, batch)
  data_sample = first_chunk.reshape(-1, task.input_dim)

  seconds = {m: 0.0 for m in methods}
  runners = {}
  for m in methods:
    t0 = time.time()
    if m == "learned":
      if theta_fn is None:
        raise ValueError("method 'learned' needs θ")
      runners[m] = LearnedRule(theta_fn(seed), state, cfg)
    else:
      runners[m] = bl.make_baseline(
        m,
        keys[m],
        state,
        task.input_dim,
        base_cfg,
        cfg.baselines,
        data_sample=data_sample,
        support=data.support,
        num_classes=task.num_classes,
        labelled=(task.x_train, task.y_train),
      )
    seconds[m] += time.time() - t0

  readouts = protocols.readout_names(ecfg)
  accuracy = {m: {r: [] for r in readouts} for m in methods}
  done = 0
  for point in points:
    chunk = point - done
    unlabelled = task.unlabelled_batches(rng_stream, chunk, batch) if chunk else None
    for m, runner in runners.items():
      t0 = time.time()
      if chunk:
        runner.advance(unlabelled)
      res = score(runner.features, task, cfg, data, seed, point)
      for r in readouts:
        accuracy[m][r].append(res[r])
      seconds[m] += time.time() - t0
    done = point
    log(
      f"seed {seed} step {point} ({'/'.join(readouts)}): "
      + ", ".join(f"{m} " + "/".join(f"{np.mean(accuracy[m][r][-1]):.3f}" for r in readouts) for m in methods)
    )
  info = {"num_labels": data.num_labels(ecfg)}
  info.update({m: d for m, runner in runners.items() if (d := runner.diagnostics())})
  return stats.SeedResult(seed, accuracy, seconds, info)


def run_evaluation(
  task,
  cfg,
  methods: Sequence[str],
  inner_steps: int,
  eval_every: int,
  seeds: Sequence[int],
  theta_fn: Callable | None = None,
  log: Callable[[str], None] = lambda s: None,
) -> dict:
  """The whole protocol; returns a JSON-serialisable result (rows, per-seed info, timings).

  `cfg` is a whole config (configs/paper.py); its `evaluation` and `baselines` sections
  supply every protocol and baseline setting.
  """
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"unknown methods {unknown}; expected a subset of {METHODS}")
  protocol = cfg.evaluation.protocol
  if protocol not in protocols.PROTOCOLS:
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {protocols.PROTOCOLS}")
  points = eval_points(inner_steps, eval_every)
  test_set = task.test_set(int(cfg.evaluation.max_test))
  t0 = time.time()
  seed_results = [evaluate_seed(task, cfg, s, methods, points, theta_fn, log, test_set) for s in seeds]
  rows = stats.aggregate(seed_results, methods, points, protocol)
  seconds = {m: sum(sr.seconds[m] for sr in seed_results) for m in methods}
  return {
    "task": task.name,
    "inner_steps": int(inner_steps),
    "eval_every": int(eval_every),
    "points": points,
    "seeds": [int(s) for s in seeds],
    "methods": list(methods),
    "protocol": protocol,
    "readouts": list(protocols.readout_names(cfg.evaluation)),
    "num_test": int(len(test_set[1])),
    "rows": rows,
    "final": stats.final_summary(rows, methods, inner_steps),
    "seconds": {"total": time.time() - t0, "per_method": seconds},
    "per_seed_info": {str(sr.seed): sr.info for sr in seed_results},
    "config": json.loads(cfg.to_json_best_effort()),
  }
