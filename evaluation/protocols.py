r"""Readouts on features: what "accuracy at a point of the inner loop" means (docs/method.md §6–7).

Protocols (`cfg.evaluation.protocol`; every setting below is a field of `cfg.evaluation`,
its value in configs/paper.py, checked by evaluation/config_section.py):
  * `fewshot` (the paper's): ridge (λ = cfg.meta_objective.ridge_lambda, one-hot targets)
    and logistic-regression (C = `logistic_c`) readouts fitted on one class-balanced
    support set (`support_per_class` per class, train split), scored on a fixed test
    subset (`max_test` examples of the test split);
  * `episodic`: at each point, `episodes` N-way K-shot tasks per seed (classes drawn
    without replacement, support from train, `n_query` queries per class from the test
    split, labels re-indexed); support and queries each take one BN pass;
  * `linear_probe` (beyond the paper): the readouts are fitted on every labelled example
    of the train split, or on a per-seed uniform subset of `probe_max_train` of them when
    the split is larger (paper.py: 10,000: all of Tiny-ImageNet-heldout and two-moons, a
    sixth of MNIST, 40% of IMDB; it bounds the L-BFGS fit and the feature passes);
  * `semi_supervised` (beyond the paper): for each fraction f of `label_fractions`
    (paper.py: 1% and 10%) the readouts are fitted on max(1, round(f·n_c)) examples of each
    class c (n_c: its train examples), the first ones of one per-seed shuffle, so the
    smaller set is inside the larger; the readouts are named "<readout>@<100·f>%".

Batch statistics. Base-model BN uses the statistics of the batch it is given. Support
features come from one pass over the whole support set (as the meta-objective does);
test features, and the labelled features of linear_probe / semi_supervised, from passes
over near-equal chunks of at least `test_chunk` examples (`np.array_split` into
⌊N/test_chunk⌋ parts), so no chunk is tiny.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from meta_unsup_rules.meta_objective.logistic import LogisticRegression, ridge_accuracy
from meta_unsup_rules.tasks import sampling

READOUTS = ("ridge", "logistic")


def feature_chunks(x: np.ndarray, min_chunk: int) -> list[np.ndarray]:
  """x in near-equal chunks of ≥ min_chunk rows (all of x if fewer): one BN pass each."""
  return np.array_split(x, max(1, len(x) // max(1, int(min_chunk))))


def batched_features(features_fn: Callable, x: np.ndarray, min_chunk: int) -> np.ndarray:
  """features_fn over near-equal chunks of ≥ min_chunk rows (all of x if fewer)."""
  return np.concatenate([np.asarray(features_fn(c)) for c in feature_chunks(x, min_chunk)], axis=0)


def readout_accuracies(
  f_support,
  y_support,
  f_test,
  y_test,
  num_classes: int,
  ridge_lambda: float = 0.1,
  logistic_c: float = 1.0,
  readouts: Sequence[str] = READOUTS,
) -> dict[str, float]:
  """Test accuracy of each readout fitted on the support features."""
  out = {}
  f_support = np.nan_to_num(np.asarray(f_support, np.float64))
  f_test = np.nan_to_num(np.asarray(f_test, np.float64))
  for r in readouts:
    if r == "ridge":
      out[r] = ridge_accuracy(f_support, y_support, f_test, y_test, num_classes, ridge_lambda)
    elif r == "logistic":
      out[r] = (
        LogisticRegression(c=logistic_c).fit(f_support, y_support, num_classes).accuracy(f_test, y_test)
      )
    else:
      raise ValueError(f"unknown readout {r!r}; expected one of {READOUTS}")
  return out


def sample_episode(task, rng: np.random.Generator, n_way: int, k_shot: int, n_query: int):
  """An N-way K-shot episode: (x_s, y_s, x_q, y_q), labels re-indexed to 0..n_way-1."""
  if n_way > task.num_classes:
    raise ValueError(f"n_way={n_way} > {task.name}'s {task.num_classes} classes")
  classes = np.sort(rng.choice(task.num_classes, n_way, replace=False))
  xs, ys, xq, yq = [], [], [], []
  for new, c in enumerate(classes):
    xs.append(task.x_train[sampling.draw(rng, np.flatnonzero(task.y_train == c), k_shot)])
    xq.append(task.x_test[sampling.draw(rng, np.flatnonzero(task.y_test == c), n_query)])
    ys.append(np.full(k_shot, new))
    yq.append(np.full(n_query, new))
  ps, pq = rng.permutation(n_way * k_shot), rng.permutation(n_way * n_query)
  return (
    np.concatenate(xs)[ps],
    np.concatenate(ys)[ps].astype(np.int32),
    np.concatenate(xq)[pq],
    np.concatenate(yq)[pq].astype(np.int32),
  )


def sample_episodes(task, rng: np.random.Generator, n_way: int, k_shot: int, n_query: int, episodes: int):
  """`episodes` episodes of sample_episode, drawn in turn from rng."""
  return [sample_episode(task, rng, n_way, k_shot, n_query) for _ in range(episodes)]


def episode_accuracies(
  episodes,
  features: Sequence[tuple],
  n_way: int,
  ridge_lambda: float = 0.1,
  logistic_c: float = 1.0,
  readouts: Sequence[str] = READOUTS,
):
  """Per-episode accuracies {readout: [episodes]} from each episode's (support, query) features."""
  acc = {r: [] for r in readouts}
  for (_, y_s, _, y_q), (f_s, f_q) in zip(episodes, features):
    res = readout_accuracies(f_s, y_s, f_q, y_q, n_way, ridge_lambda, logistic_c, readouts)
    for r in readouts:
      acc[r].append(res[r])
  return acc


def episodic_accuracies(
  features_fn: Callable,
  task,
  rng: np.random.Generator,
  n_way: int,
  k_shot: int,
  n_query: int,
  episodes: int,
  ridge_lambda: float = 0.1,
  logistic_c: float = 1.0,
  readouts: Sequence[str] = READOUTS,
):
  """Per-episode accuracies {readout: [episodes]}; support and queries each take one BN pass."""
  drawn = sample_episodes(task, rng, n_way, k_shot, n_query, episodes)
  features = [(features_fn(x_s), features_fn(x_q)) for x_s, _, x_q, _ in drawn]
  return episode_accuracies(drawn, features, n_way, ridge_lambda, logistic_c, readouts)


def fraction_label(fraction: float) -> str:
  """0.01 -> "1%", 0.125 -> "12.5%"."""
  return f"{round(100 * float(fraction), 6):g}%"


def readout_names(ecfg) -> tuple[str, ...]:
  """The accuracy keys `ecfg.protocol` reports: READOUTS, or one per readout × label fraction."""
  return get(ecfg.protocol).readout_names(ecfg)


def labelled_subsets(y_train: np.ndarray, ecfg, rng: np.random.Generator) -> dict:
  """Train-split indices the readouts are fitted on, keyed by readout-name suffix.

  linear_probe: {"": all indices, or a uniform subset of probe_max_train};
  semi_supervised: {"@1%": ..., "@10%": ...}, class-stratified and nested (module docstring).
  """
  y_train = np.asarray(y_train)
  if ecfg.protocol == LinearProbe.name:
    cap = int(ecfg.probe_max_train)
    if cap < 1:
      raise ValueError(f"probe_max_train must be >= 1, got {cap}")
    n = len(y_train)
    return {"": np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))}
  if ecfg.protocol == SemiSupervised.name:
    fractions = [float(f) for f in ecfg.label_fractions]
    names = [fraction_label(f) for f in fractions]
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions) or len(set(names)) < len(names):
      raise ValueError(f"label_fractions must be distinct values in (0, 1], got {fractions}")
    orders = [rng.permutation(np.flatnonzero(y_train == c)) for c in np.unique(y_train)]
    return {
      f"@{name}": np.sort(np.concatenate([order[: max(1, int(round(f * len(order))))] for order in orders]))
      for f, name in zip(fractions, names)
    }
  raise ValueError(f"protocol {ecfg.protocol!r} fits its readouts on no labelled subsets")


# ---------------------------------------------------------------------------- the registry


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


class FewShot:
  """The paper's: the readouts fitted on one class-balanced support set, scored on the test subset."""

  name = "fewshot"
  pooled_episodes = False  # a row's error is over the seeds
  fits_subsets = False  # fitted on the support set, not on labelled train subsets
  per_class_field = "support_per_class"  # labelled examples a class must have (your own data)

  def readout_names(self, ecfg) -> tuple[str, ...]:
    return READOUTS

  def num_labels(self, data, ecfg) -> dict:
    return {r: len(data.support[1]) for r in self.readout_names(ecfg)}

  def check(self, task, ecfg) -> str | None:
    return None

  def plan(self, task, cfg, data, seed: int, point: int) -> ReadoutPlan:
    ridge_lambda, logistic_c = float(cfg.meta_objective.ridge_lambda), float(cfg.evaluation.logistic_c)
    x_test, y_test = data.test
    test = feature_chunks(x_test, int(cfg.evaluation.test_chunk))
    x_support, y_support = data.support

    def fit(f):
      f_test = np.concatenate(f[1:], axis=0)
      return readout_accuracies(f[0], y_support, f_test, y_test, task.num_classes, ridge_lambda, logistic_c)

    return ReadoutPlan((x_support, *test), fit)


class Episodic(FewShot):
  """N-way K-shot episodes at each point; a row pools every episode of every seed."""

  name = "episodic"
  pooled_episodes = True
  per_class_field = "k_shot"

  def num_labels(self, data, ecfg) -> dict:
    return {r: int(ecfg.n_way) * int(ecfg.k_shot) for r in self.readout_names(ecfg)}

  def check(self, task, ecfg) -> str | None:
    if ecfg.n_way > task.num_classes:
      return (
        f"config field evaluation.n_way = {ecfg.n_way} is not allowed: expected at most "
        f"{task.name}'s {task.num_classes} classes"
      )
    return None

  def plan(self, task, cfg, data, seed: int, point: int) -> ReadoutPlan:
    ecfg = cfg.evaluation
    ridge_lambda, logistic_c = float(cfg.meta_objective.ridge_lambda), float(ecfg.logistic_c)
    n_way = int(ecfg.n_way)
    rng = np.random.default_rng([seed, 2, point])
    episodes = sample_episodes(task, rng, n_way, int(ecfg.k_shot), int(ecfg.n_query), int(ecfg.episodes))

    def fit(f):
      pairs = list(zip(f[0::2], f[1::2]))
      return episode_accuracies(episodes, pairs, n_way, ridge_lambda, logistic_c)

    return ReadoutPlan(tuple(x for x_s, _, x_q, _ in episodes for x in (x_s, x_q)), fit)


class LinearProbe(FewShot):
  """The readouts fitted on the labelled train split (or probe_max_train of it)."""

  name = "linear_probe"
  fits_subsets = True
  per_class_field = None

  def num_labels(self, data, ecfg) -> dict:
    return {r + sfx: len(pos) for sfx, pos in data.positions.items() for r in READOUTS}

  def plan(self, task, cfg, data, seed: int, point: int) -> ReadoutPlan:
    ridge_lambda, logistic_c = float(cfg.meta_objective.ridge_lambda), float(cfg.evaluation.logistic_c)
    chunk = int(cfg.evaluation.test_chunk)
    x_test, y_test = data.test
    test = feature_chunks(x_test, chunk)
    x_pool, y_pool = data.pool
    pool = feature_chunks(x_pool, chunk)

    def fit(f):
      f_test, f_pool = np.concatenate(f[: len(test)], axis=0), np.concatenate(f[len(test) :], axis=0)
      out = {}
      for sfx, pos in data.positions.items():
        fitted = readout_accuracies(
          f_pool[pos], y_pool[pos], f_test, y_test, task.num_classes, ridge_lambda, logistic_c
        )
        out.update({r + sfx: acc for r, acc in fitted.items()})
      return out

    return ReadoutPlan((*test, *pool), fit)


class SemiSupervised(LinearProbe):
  """The readouts fitted on each fraction of every class's train labels ("<readout>@<f>%")."""

  name = "semi_supervised"

  def readout_names(self, ecfg) -> tuple[str, ...]:
    return tuple(f"{r}@{fraction_label(f)}" for f in ecfg.label_fractions for r in READOUTS)


# name -> protocol: what `cfg.evaluation.protocol` chooses, the one place a protocol is looked up.
PROTOCOLS = {p.name: p() for p in (FewShot, Episodic, LinearProbe, SemiSupervised)}


def get(name: str):
  """The protocol of `name` (ValueError naming the known ones)."""
  try:
    return PROTOCOLS[name]
  except KeyError:
    raise ValueError(f"unknown protocol {name!r}; expected one of {tuple(PROTOCOLS)}") from None
