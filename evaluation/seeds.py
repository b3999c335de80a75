r"""One seed of an evaluation: what it draws, the methods it builds, how they are scored.

For each seed s (seeds cfg.seed, cfg.seed+1, ...):
  * one fresh base model, `base_models.init(fold_in(PRNGKey(s), 1), ...)`, shared as the
    starting point of every method (learned rule, random init, VAE encoder, supervised,
    contrastive, Hebbian and protonet bodies), so that at step 0 they are the identical
    network;
  * θ for `--theta=random`: `init_theta(PRNGKey(s), cfg.rule)`;
  * each baseline's PRNG key: `fold_in(PRNGKey(s), crc32(key_name))`, from its name (its
    `key_name`: protonet_permuted shares the protonet's), so that adding, removing or
    reordering methods changes no other method's numbers;
  * one unlabelled stream (`default_rng([s, 0])`, batch `cfg.unroll.inner_batch_size`) fed
    to every method in lockstep, in chunks of `eval_every` steps;
  * one class-balanced support set and one fixed test subset used at every evaluation
    point and by every method, so comparisons are paired;
  * at steps 0, M, 2M, ..., N: the readouts of the protocol (protocols.py), planned once
    per point (`readout_plan`: the inputs of each BN pass, then the fit on their features).
Both ways of running the seeds, one after another (runner.py) and all at once
(batched.py), build their seeds here, so they draw exactly the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from typing import Callable, Sequence

import jax
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.base_models import baselines as bl
from meta_unsup_rules.evaluation import protocols, stats
from meta_unsup_rules.evaluation.learned_rule import LearnedRule


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
    return protocols.get(ecfg.protocol).num_labels(self, ecfg)


def labelled_data(task, ecfg, seed: int, test_set) -> LabelledData:
  support = task.support_set(np.random.default_rng([seed, 1]), int(ecfg.support_per_class))
  data = LabelledData(support, test_set)
  if protocols.get(ecfg.protocol).fits_subsets:
    subsets = protocols.labelled_subsets(task.y_train, ecfg, np.random.default_rng([seed, 4]))
    pool = np.unique(np.concatenate(list(subsets.values())))
    data.pool = task.x_train[pool], task.y_train[pool]
    # Positions in the pool: the labelled features are computed once per point for all subsets.
    data.positions = {sfx: np.searchsorted(pool, idx) for sfx, idx in subsets.items()}
  return data


@dataclasses.dataclass
class Seed:
  """One seed's methods and data, and what it has recorded so far."""

  seed: int
  data: LabelledData
  stream: np.random.Generator  # the unlabelled stream, drawn chunk by chunk
  runners: dict  # method -> advance / features / diagnostics (base_models/baselines/mlp_baseline.py)
  seconds: dict  # method -> seconds spent on it (building included)
  accuracy: dict  # method -> readout -> list over points

  def record(self, method: str, scores: dict) -> None:
    for r, values in self.accuracy[method].items():
      values.append(scores[r])

  def log_line(self, point: int, readouts) -> str:
    """'seed S step N (ridge/logistic): learned 0.412/0.398, ...': the latest accuracies."""
    latest = {m: {r: v[-1] for r, v in acc.items()} for m, acc in self.accuracy.items()}
    return f"seed {self.seed} " + stats.step_line(point, latest, readouts)

  def result(self, ecfg) -> stats.SeedResult:
    info = {"num_labels": self.data.num_labels(ecfg)}
    info.update({m: d for m, runner in self.runners.items() if (d := runner.diagnostics())})
    return stats.SeedResult(self.seed, self.accuracy, self.seconds, info)


def setup_seed(task, cfg, seed: int, methods: Sequence[str], theta_fn: Callable | None, test_set) -> Seed:
  """Draws seed `seed`'s base model, stream and labelled data, and builds every method on them."""
  ecfg = cfg.evaluation
  keys = seed_keys(seed)
  base_cfg = cfg.base_model
  state = base_models.init(keys["base"], task.input_dim, base_models.layer_widths(base_cfg), base_cfg)
  data = labelled_data(task, ecfg, seed, test_set)
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
  return Seed(seed, data, np.random.default_rng([seed, 0]), runners, seconds, accuracy)


ReadoutPlan = protocols.ReadoutPlan


def readout_plan(task, cfg, data: LabelledData, seed: int, point: int) -> protocols.ReadoutPlan:
  """The readouts of `cfg.evaluation.protocol` (protocols.py) for seed `seed` at step `point`."""
  return protocols.get(cfg.evaluation.protocol).plan(task, cfg, data, seed, point)
