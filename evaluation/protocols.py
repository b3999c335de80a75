r"""Readouts on features: what "accuracy at a point of the inner loop" means (docs/method.md §6–7).

Protocols (`cfg.evaluation.protocol`; every setting below is a field of `cfg.evaluation`,
its value in configs/paper.py, checked by evaluation/settings.py):
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

from typing import Callable, Sequence

import numpy as np

from meta_unsup_rules.meta_objective.logistic import LogisticRegression, ridge_accuracy
from meta_unsup_rules.tasks import sampling

READOUTS = ("ridge", "logistic")
PROTOCOLS = ("fewshot", "episodic", "linear_probe", "semi_supervised")


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
  """The accuracy keys a protocol reports: READOUTS, or one per readout × label fraction."""
  if ecfg.protocol == "semi_supervised":
    return tuple(f"{r}@{fraction_label(f)}" for f in ecfg.label_fractions for r in READOUTS)
  return READOUTS


def labelled_subsets(y_train: np.ndarray, ecfg, rng: np.random.Generator) -> dict:
  """Train-split indices the readouts are fitted on, keyed by readout-name suffix.

  linear_probe: {"": all indices, or a uniform subset of probe_max_train};
  semi_supervised: {"@1%": ..., "@10%": ...}, class-stratified and nested (module docstring).
  """
  y_train = np.asarray(y_train)
  if ecfg.protocol == "linear_probe":
    cap = int(ecfg.probe_max_train)
    if cap < 1:
      raise ValueError(f"probe_max_train must be >= 1, got {cap}")
    n = len(y_train)
    return {"": np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))}
  if ecfg.protocol == "semi_supervised":
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
