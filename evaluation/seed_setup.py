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


@dataclasses.dataclass(frozen=True)
class ReadoutPlan:
  """One seed's readouts at one point, for every method: the inputs of each BN pass, and the
  fit of the readouts on their features ({readout name: accuracy; episodic: list over episodes}).

  It depends on the seed and the point only, so a method's score is `fit` of its features
  of `batches`, however those were computed (one seed at a time or all seeds at once).
  """

  batches: tuple  # float32 [n_i, D] arrays, one BN pass each
  fit: Callable[[Sequence[np.ndarray]], dict]

  def score(self, features_fn: Callable) -> dict:
    return self.fit([np.asarray(features_fn(b)) for b in self.batches])


def readout_plan(task, cfg, data: LabelledData, seed: int, point: int) -> ReadoutPlan:
  """The readouts of `cfg.evaluation.protocol` (protocols.py) for seed `seed` at step `point`."""
  ecfg = cfg.evaluation
  ridge_lambda, logistic_c = float(cfg.meta_objective.ridge_lambda), float(ecfg.logistic_c)
  num_classes, chunk = task.num_classes, int(ecfg.test_chunk)
  if ecfg.protocol == "episodic":
    n_way = int(ecfg.n_way)
    rng = np.random.default_rng([seed, 2, point])
    episodes = protocols.sample_episodes(
      task, rng, n_way, int(ecfg.k_shot), int(ecfg.n_query), int(ecfg.episodes)
    )

    def fit_episodes(f):
      pairs = list(zip(f[0::2], f[1::2]))
      return protocols.episode_accuracies(episodes, pairs, n_way, ridge_lambda, logistic_c)

    return ReadoutPlan(tuple(x for x_s, _, x_q, _ in episodes for x in (x_s, x_q)), fit_episodes)
  x_test, y_test = data.test
  test = protocols.feature_chunks(x_test, chunk)
  if ecfg.protocol == "fewshot":
    x_support, y_support = data.support

    def fit_fewshot(f):
      f_test = np.concatenate(f[1:], axis=0)
      return protocols.readout_accuracies(
        f[0], y_support, f_test, y_test, num_classes, ridge_lambda, logistic_c
      )

    return ReadoutPlan((x_support, *test), fit_fewshot)
  x_pool, y_pool = data.pool
  pool = protocols.feature_chunks(x_pool, chunk)

  def fit_subsets(f):
    f_test, f_pool = np.concatenate(f[: len(test)], axis=0), np.concatenate(f[len(test) :], axis=0)
    out = {}
    for sfx, pos in data.positions.items():
      fitted = protocols.readout_accuracies(
        f_pool[pos], y_pool[pos], f_test, y_test, num_classes, ridge_lambda, logistic_c
      )
      out.update({r + sfx: acc for r, acc in fitted.items()})
    return out

  return ReadoutPlan((*test, *pool), fit_subsets)
