r"""Meta-test evaluation protocol: few-shot readouts along the inner loop (spec §6–7).

For each seed s (seeds cfg.seed, cfg.seed+1, ...):
  * one fresh base model, `base_models.init(fold_in(PRNGKey(s), 1), ...)`, shared as the
    starting point of every method (learned rule, random init, VAE encoder, supervised,
    contrastive, Hebbian and protonet bodies), so that at step 0 they are the identical
    network;
  * θ for `--theta=random`: `init_theta(PRNGKey(s), cfg.rule)`;
  * one unlabelled stream (batch `cfg.unroll.inner_batch_size`) fed to every method in
    lockstep, in chunks of `eval_every` steps (one compiled shape per chunk length);
  * one class-balanced support set (`support_per_class` per class, train split) used at
    every evaluation point and by every method, so comparisons are paired;
  * at steps 0, M, 2M, ..., N: ridge (λ = cfg.meta_objective.ridge_lambda, one-hot targets)
    and logistic-regression (C = `logistic_c`) readouts fitted on the support features,
    scored on a fixed test subset (`max_test` examples of the test split).

Batch statistics. Base-model BN uses the statistics of the batch it is given. Support
features come from one pass over the whole support set (as the meta-objective does);
test features from passes over near-equal chunks of at least `test_chunk` examples
(`np.array_split` into ⌊N/test_chunk⌋ parts), so no chunk is tiny.

Aggregation: per (method, step, readout), the mean over seeds and its standard error
(sample std, ddof=1, /√S; undefined — None — for one seed); `ci95` = 1.96·sem.
Episodic protocol (`protocol="episodic"`): at each point, `episodes` N-way K-shot tasks
per seed (classes drawn without replacement, support from train, `n_query` queries per
class from the test split, labels re-indexed); the row pools all S·E episode
accuracies: mean and the normal 95% interval 1.96·std(ddof=1)/√(S·E); `sem` stays the
seed-level standard error of the per-seed means.

Two protocols beyond the paper, scored on the same fixed test subset:
  * `linear_probe`: the readouts are fitted on every labelled example of the train split,
    or on a per-seed uniform subset of `probe_max_train` of them when the split is larger
    (default 10,000: all of Tiny-ImageNet-heldout and two-moons, a sixth of MNIST, 40% of
    IMDB; it bounds the L-BFGS fit and the feature passes at every point);
  * `semi_supervised`: for each fraction f of `label_fractions` (default 1% and 10%) the
    readouts are fitted on max(1, round(f·n_c)) examples of each class c (n_c: its train
    examples), the first ones of one per-seed shuffle, so the smaller set is inside the
    larger; the readouts are named "<readout>@<100·f>%" (e.g. "ridge@1%").
Both compute the labelled features in BN passes of ≥ `test_chunk` examples, like the test
features. `per_seed_info[seed]["num_labels"]` records, per readout, how many labelled
examples it was fitted on (per episode for the episodic protocol).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import base_models
from base_models import baselines as bl
from meta_objective.logistic import LogisticRegression, ridge_accuracy

METHODS = ("learned",) + bl.BASELINES
READOUTS = ("ridge", "logistic")
PROTOCOLS = ("fewshot", "episodic", "linear_probe", "semi_supervised")
Z95 = 1.959963984540054


def default_evaluation_config() -> ml_collections.ConfigDict:
  """Protocol settings ([ours]; the paper's Fig. 4 uses 10 examples per class)."""
  return ml_collections.ConfigDict(dict(
      support_per_class=10,    # labelled examples per class for the readouts
      max_test=2_000,          # test examples scored (fixed seeded subset of the test split)
      test_chunk=500,          # minimum BN batch for test features
      logistic_c=1.0,          # sklearn-style C of the logistic readout (released code: 1.0)
      protocol="fewshot",      # one of PROTOCOLS
      n_way=5,                 # episodic protocol
      k_shot=10,
      n_query=15,
      episodes=50,             # per seed and evaluation point
      probe_max_train=10_000,  # linear_probe: labelled train examples, at most (module docstring)
      label_fractions=(0.01, 0.1),  # semi_supervised: fractions of each class's train labels
  ))


# ----------------------------------------------------------------------------- statistics

def mean_sem(values: Sequence[float]) -> tuple[float, float | None]:
  """Mean and standard error of the mean (ddof=1); sem is None for fewer than 2 values."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    raise ValueError("mean_sem of no values")
  sem = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
  return float(np.mean(v)), sem


def confidence_interval95(values: Sequence[float]) -> tuple[float, float | None]:
  """(mean, half-width) of the normal-approximation 95% CI, 1.96·std(ddof=1)/√n."""
  mean, sem = mean_sem(values)
  return mean, (None if sem is None else Z95 * sem)


# ----------------------------------------------------------------------------- readouts

def batched_features(features_fn: Callable, x: np.ndarray, min_chunk: int) -> np.ndarray:
  """features_fn over near-equal chunks of ≥ min_chunk rows (all of x if fewer)."""
  n = len(x)
  parts = max(1, n // max(1, int(min_chunk)))
  return np.concatenate([np.asarray(features_fn(c)) for c in np.array_split(x, parts)], axis=0)


def readout_accuracies(f_support, y_support, f_test, y_test, num_classes: int,
                       ridge_lambda: float = 0.1, logistic_c: float = 1.0,
                       readouts: Sequence[str] = READOUTS) -> dict[str, float]:
  """Test accuracy of each readout fitted on the support features."""
  out = {}
  f_support = np.nan_to_num(np.asarray(f_support, np.float64))
  f_test = np.nan_to_num(np.asarray(f_test, np.float64))
  for r in readouts:
    if r == "ridge":
      out[r] = ridge_accuracy(f_support, y_support, f_test, y_test, num_classes, ridge_lambda)
    elif r == "logistic":
      out[r] = LogisticRegression(c=logistic_c).fit(f_support, y_support, num_classes).accuracy(
          f_test, y_test)
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
    pool = np.flatnonzero(task.y_train == c)
    xs.append(task.x_train[rng.choice(pool, k_shot, replace=len(pool) < k_shot)])
    pool = np.flatnonzero(task.y_test == c)
    xq.append(task.x_test[rng.choice(pool, n_query, replace=len(pool) < n_query)])
    ys.append(np.full(k_shot, new))
    yq.append(np.full(n_query, new))
  ps, pq = rng.permutation(n_way * k_shot), rng.permutation(n_way * n_query)
  return (np.concatenate(xs)[ps], np.concatenate(ys)[ps].astype(np.int32),
          np.concatenate(xq)[pq], np.concatenate(yq)[pq].astype(np.int32))


def episodic_accuracies(features_fn: Callable, task, rng: np.random.Generator, n_way: int,
                        k_shot: int, n_query: int, episodes: int, ridge_lambda: float = 0.1,
                        logistic_c: float = 1.0, readouts: Sequence[str] = READOUTS):
  """Per-episode accuracies {readout: [episodes]}; support and queries each take one BN pass."""
  acc = {r: [] for r in readouts}
  for _ in range(episodes):
    x_s, y_s, x_q, y_q = sample_episode(task, rng, n_way, k_shot, n_query)
    res = readout_accuracies(features_fn(x_s), y_s, features_fn(x_q), y_q, n_way, ridge_lambda,
                             logistic_c, readouts)
    for r in readouts:
      acc[r].append(res[r])
  return acc


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
    return {f"@{name}": np.sort(np.concatenate(
        [order[:max(1, int(round(f * len(order))))] for order in orders]))
            for f, name in zip(fractions, names)}
  raise ValueError(f"protocol {ecfg.protocol!r} fits its readouts on no labelled subsets")


# ----------------------------------------------------------------------------- learned rule

class LearnedRule(bl._MLPBaseline):
  """The base model trained by applying θ's UnsupervisedUpdate on the unlabelled stream."""
  name = "learned"

  def __init__(self, theta, state: dict, cfg):
    super().__init__(state, cfg.base_model)
    import learned_update  # heavy; only needed for this method
    self.theta = theta
    self._apply = learned_update.make_unroll_fns(cfg).apply_rule

  def advance(self, unlabelled) -> None:
    if len(unlabelled) == 0:
      return
    self.state = self._apply(self.theta, self.state, jnp.asarray(unlabelled, jnp.float32))


# ----------------------------------------------------------------------------- protocol

def eval_points(inner_steps: int, eval_every: int) -> list[int]:
  """0, M, 2M, ..., N (N always included)."""
  if inner_steps < 0 or eval_every < 1:
    raise ValueError(f"need inner_steps >= 0 and eval_every >= 1, got {inner_steps}, {eval_every}")
  points = list(range(0, inner_steps + 1, eval_every))
  if points[-1] != inner_steps:
    points.append(inner_steps)
  return points


def seed_keys(seed: int):
  root = jax.random.PRNGKey(seed)
  keys = {"theta": root, "base": jax.random.fold_in(root, 1),
          **{m: jax.random.fold_in(root, 2 + i) for i, m in enumerate(bl.BASELINES)}}
  # Both protonets train identically, so that the permutation is their only difference.
  keys["protonet_permuted"] = keys["protonet"]
  return keys


def _deep_update(base: ml_collections.ConfigDict, override) -> ml_collections.ConfigDict:
  for k, v in override.items():
    if k in base and isinstance(base[k], ml_collections.ConfigDict) and hasattr(v, "items"):
      _deep_update(base[k], v)
    else:
      base[k] = v
  return base


def config_with_defaults(cfg) -> ml_collections.ConfigDict:
  """A copy of cfg with `baselines` and `evaluation` filled in from the defaults."""
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  for name, default in (("baselines", bl.default_baseline_config()),
                        ("evaluation", default_evaluation_config())):
    cfg[name] = _deep_update(default, cfg[name].to_dict()) if name in cfg else default
  return cfg


@dataclasses.dataclass
class SeedResult:
  seed: int
  # accuracy[method][readout] -> list over points (fewshot: float; episodic: list of episodes)
  accuracy: dict
  seconds: dict
  info: dict


def evaluate_seed(task, cfg, seed: int, methods: Sequence[str], points: Sequence[int],
                  theta_fn: Callable | None = None, log: Callable[[str], None] = lambda s: None,
                  test_set=None) -> SeedResult:
  """Runs every method on seed `seed` and scores it at every point."""
  ecfg = cfg.evaluation
  keys = seed_keys(seed)
  base_cfg = cfg.base_model
  state = base_models.init(keys["base"], task.input_dim, base_models.layer_widths(base_cfg),
                           base_cfg)
  rng_stream = np.random.default_rng([seed, 0])
  rng_support = np.random.default_rng([seed, 1])
  support = task.support_set(rng_support, int(ecfg.support_per_class))
  x_test, y_test = test_set if test_set is not None else task.test_set(int(ecfg.max_test))
  if ecfg.protocol in ("linear_probe", "semi_supervised"):
    subsets = labelled_subsets(task.y_train, ecfg, np.random.default_rng([seed, 4]))
    pool = np.unique(np.concatenate(list(subsets.values())))
    x_pool, y_pool = task.x_train[pool], task.y_train[pool]
    # Positions in the pool: the labelled features are computed once per point for all subsets.
    positions = {sfx: np.searchsorted(pool, idx) for sfx, idx in subsets.items()}
  batch = int(cfg.unroll.inner_batch_size)
  first_chunk = task.unlabelled_batches(np.random.default_rng([seed, 3]), 1, batch)
  data_sample = first_chunk.reshape(-1, task.input_dim)

  seconds = {m: 0.0 for m in methods}
  runners, info = {}, {}
  for m in methods:
    t0 = time.time()
    if m == "learned":
      if theta_fn is None:
        raise ValueError("method 'learned' needs θ")
      runners[m] = LearnedRule(theta_fn(seed), state, cfg)
    else:
      runners[m] = bl.make_baseline(m, keys[m], state, task.input_dim, base_cfg, cfg.baselines,
                                    data_sample=data_sample, support=support,
                                    num_classes=task.num_classes,
                                    labelled=(task.x_train, task.y_train))
    seconds[m] += time.time() - t0
  if "supervised" in runners:
    info["supervised"] = {"train_accuracy": runners["supervised"].train_accuracy,
                          "steps": runners["supervised"].steps}

  readouts = readout_names(ecfg)
  if ecfg.protocol == "episodic":
    info["num_labels"] = {r: int(ecfg.n_way) * int(ecfg.k_shot) for r in readouts}
  elif ecfg.protocol == "fewshot":
    info["num_labels"] = {r: len(support[1]) for r in readouts}
  else:
    info["num_labels"] = {r + sfx: len(pos) for sfx, pos in positions.items() for r in READOUTS}
  accuracy = {m: {r: [] for r in readouts} for m in methods}
  done = 0
  for point in points:
    chunk = point - done
    unlabelled = task.unlabelled_batches(rng_stream, chunk, batch) if chunk else None
    for m, runner in runners.items():
      t0 = time.time()
      if chunk:
        runner.advance(unlabelled)
      if ecfg.protocol == "episodic":
        res = episodic_accuracies(runner.features, task, np.random.default_rng([seed, 2, point]),
                                  int(ecfg.n_way), int(ecfg.k_shot), int(ecfg.n_query),
                                  int(ecfg.episodes), float(cfg.meta_objective.ridge_lambda),
                                  float(ecfg.logistic_c))
      elif ecfg.protocol in ("linear_probe", "semi_supervised"):
        f_p = batched_features(runner.features, x_pool, int(ecfg.test_chunk))
        f_t = batched_features(runner.features, x_test, int(ecfg.test_chunk))
        res = {}
        for sfx, pos in positions.items():
          fitted = readout_accuracies(f_p[pos], y_pool[pos], f_t, y_test, task.num_classes,
                                      float(cfg.meta_objective.ridge_lambda),
                                      float(ecfg.logistic_c))
          res.update({r + sfx: acc for r, acc in fitted.items()})
      else:
        f_s = runner.features(support[0])
        f_t = batched_features(runner.features, x_test, int(ecfg.test_chunk))
        res = readout_accuracies(f_s, support[1], f_t, y_test, task.num_classes,
                                 float(cfg.meta_objective.ridge_lambda), float(ecfg.logistic_c))
      for r in readouts:
        accuracy[m][r].append(res[r])
      seconds[m] += time.time() - t0
    done = point
    log(f"seed {seed} step {point} ({'/'.join(readouts)}): " + ", ".join(
        f"{m} " + "/".join(f"{np.mean(accuracy[m][r][-1]):.3f}" for r in readouts)
        for m in methods))
  if "vae" in runners:
    h = runners["vae"].elbo_history
    info["vae"] = {"likelihood": runners["vae"].likelihood,
                   "elbo_first": h[0] if h else None, "elbo_last": h[-1] if h else None}
  if "contrastive" in runners:
    h = runners["contrastive"].loss_history
    info["contrastive"] = {"loss_first": h[0] if h else None, "loss_last": h[-1] if h else None}
  for m in ("protonet", "protonet_permuted"):
    if m in runners:
      h, a = runners[m].loss_history, runners[m].accuracy_history
      info[m] = {"loss_first": h[0] if h else None, "loss_last": h[-1] if h else None,
                 "episode_accuracy_last": a[-1] if a else None, "episodes": len(h)}
  return SeedResult(seed, accuracy, seconds, info)


def aggregate(seed_results: Sequence[SeedResult], methods, points, protocol="fewshot") -> list[dict]:
  """One row per method × step × readout: mean, sem (over seeds), ci95, per-seed values.

  The readouts are the accuracy keys of the first seed's result (see `readout_names`).
  """
  rows = []
  for m in methods:
    for i, step in enumerate(points):
      for r in seed_results[0].accuracy[m]:
        per_seed = [sr.accuracy[m][r][i] for sr in seed_results]
        if protocol == "episodic":
          pooled = [a for episodes in per_seed for a in episodes]
          per_seed = [float(np.mean(e)) for e in per_seed]
          mean, ci = confidence_interval95(pooled)
          _, sem = mean_sem(per_seed)
        else:
          mean, sem = mean_sem(per_seed)
          ci = None if sem is None else Z95 * sem
        rows.append({"method": m, "step": int(step), "readout": r, "mean": mean, "sem": sem,
                     "ci95": ci, "n_seeds": len(per_seed), "values": [float(v) for v in per_seed]})
  return rows


def final_summary(rows, methods, inner_steps) -> dict:
  out = {}
  for m in methods:
    out[m] = {row["readout"]: {"mean": row["mean"], "sem": row["sem"]}
              for row in rows if row["method"] == m and row["step"] == inner_steps}
  return out


def run_evaluation(task, cfg, methods: Sequence[str], inner_steps: int, eval_every: int,
                   seeds: Sequence[int], theta_fn: Callable | None = None,
                   log: Callable[[str], None] = lambda s: None) -> dict:
  """The whole protocol; returns a JSON-serialisable result (rows, per-seed info, timings)."""
  cfg = config_with_defaults(cfg)
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"unknown methods {unknown}; expected a subset of {METHODS}")
  if cfg.evaluation.protocol not in PROTOCOLS:
    raise ValueError(f"unknown protocol {cfg.evaluation.protocol!r}; expected one of {PROTOCOLS}")
  points = eval_points(inner_steps, eval_every)
  test_set = task.test_set(int(cfg.evaluation.max_test))
  t0 = time.time()
  seed_results = [evaluate_seed(task, cfg, s, methods, points, theta_fn, log, test_set)
                  for s in seeds]
  rows = aggregate(seed_results, methods, points, cfg.evaluation.protocol)
  seconds = {m: sum(sr.seconds[m] for sr in seed_results) for m in methods}
  return {"task": task.name, "inner_steps": int(inner_steps), "eval_every": int(eval_every),
          "points": points, "seeds": [int(s) for s in seeds], "methods": list(methods),
          "protocol": cfg.evaluation.protocol, "readouts": list(readout_names(cfg.evaluation)),
          "num_test": int(len(test_set[1])),
          "rows": rows, "final": final_summary(rows, methods, inner_steps),
          "seconds": {"total": time.time() - t0, "per_method": seconds},
          "per_seed_info": {str(sr.seed): sr.info for sr in seed_results},
          "config": json.loads(cfg.to_json_best_effort())}


def resolve_theta(theta_arg: str, cfg, overrides: dict | None = None):
  """(theta_fn, cfg) for `--theta`: 'random' or an export directory.

  'random': θ = init_theta(PRNGKey(seed), cfg.rule) per seed. An export: its config.json
  supplies `rule` and `base_model`, then the flat `overrides` ({"base_model.x": v, ...},
  e.g. from config_flags.get_override_values) of those two sections are re-applied.
  Raises learned_update.ExportError for a missing or mismatched export.
  """
  import learned_update
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  if theta_arg == "random":
    rule_cfg = cfg.rule
    return (lambda seed: learned_update.init_theta(jax.random.PRNGKey(seed), rule_cfg)), cfg
  theta, theta_cfg, _ = learned_update.load_theta(theta_arg)
  for section in ("rule", "base_model"):
    if section in theta_cfg:
      cfg[section] = ml_collections.ConfigDict(theta_cfg[section].to_dict())
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    if parents and parents[0] in ("rule", "base_model"):
      node = cfg
      for p in parents:
        node = node[p]
      node[leaf] = value
  return (lambda seed: theta), cfg


# ----------------------------------------------------------------------------- sweeps (Fig. 5)

SWEEPS = {
    # name: (config field under base_model, default values, parser of a --values item)
    "width": ("hidden_widths", ("32", "128", "512"), lambda v: (int(v),) * 4),
    "depth": ("hidden_widths", ("1", "2", "4", "8"), lambda v: (128,) * int(v)),
    "activation": ("activation", ("relu", "leaky_relu", "swish", "tanh", "sigmoid", "step"), str),
    "permutation": ("permute_inputs", ("true", "false"),
                    lambda v: {"true": True, "false": False}[v.lower()]),
}


def sweep_config(cfg, sweep: str, value: str) -> ml_collections.ConfigDict:
  """cfg with base_model.<field> set for one sweep value (e.g. width "512" → 4×512 hidden)."""
  if sweep not in SWEEPS:
    raise ValueError(f"unknown sweep {sweep!r}; expected one of {tuple(SWEEPS)}")
  field, _, parse = SWEEPS[sweep]
  try:
    parsed = parse(value)
  except (KeyError, ValueError) as e:
    raise ValueError(f"bad value {value!r} for sweep {sweep!r}") from e
  if sweep == "activation":
    base_models.activation_fn(parsed)   # raises for an unknown name
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  cfg.base_model[field] = parsed
  return cfg


def plot_final_accuracy(x, finals: Sequence[dict], methods, path, xlabel: str, ylabel: str,
                        title: str, categorical: bool = False) -> None:
  """Final accuracy (± s.e.m.) against x, one line per method, one panel per readout.

  finals[i] is the `final` summary ({method: {readout: {mean, sem}}}) of the run at x[i].
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  readouts = list(finals[0][methods[0]])
  positions = list(range(len(x))) if categorical else list(x)
  fig, axes = plt.subplots(1, len(readouts), figsize=(5.5 * len(readouts), 4), squeeze=False)
  for ax, r in zip(axes[0], readouts):
    for m in methods:
      mean = [f[m][r]["mean"] for f in finals]
      err = [f[m][r]["sem"] or 0.0 for f in finals]
      ax.errorbar(positions, mean, yerr=err, marker="o", capsize=3, label=m)
    if categorical:
      ax.set_xticks(positions, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} ({r})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_sweep(sweep_result: dict, path) -> None:
  """Final accuracy vs sweep value, one line per method, one panel per readout."""
  values = sweep_result["values"]
  plot_final_accuracy(values, [sweep_result["final"][v] for v in values], sweep_result["methods"], path,
                      sweep_result["sweep"], f"test accuracy after {sweep_result['inner_steps']} steps",
                      f"{sweep_result['task']}: {sweep_result['sweep']} sweep, ± s.e.m.", categorical=True)


def plot_curve(curve: dict, path) -> None:
  """Final few-shot accuracy (± s.e.m.) of θ snapshots against meta-training updates."""
  points = curve["points"]
  plot_final_accuracy([p["updates"] for p in points], [p["final"] for p in points], curve["methods"], path,
                      "meta-training updates of θ (0: untrained)",
                      f"test accuracy after {curve['inner_steps']} inner steps",
                      f"{curve['task']} (held out): {len(curve['seeds'])} seeds, ± s.e.m.")


# ----------------------------------------------------------------------------- outputs

CSV_FIELDS = ("task", "protocol", "method", "step", "readout", "mean", "sem", "ci95", "n_seeds",
              "values")


def write_outputs(result: dict, out_dir) -> dict[str, str]:
  """results.csv (one row per method × step × readout), results.json and accuracy.png."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json",
           "png": out_dir / "accuracy.png"}
  with open(paths["csv"], "w", newline="") as f:
    w = csv.DictWriter(f, CSV_FIELDS)
    w.writeheader()
    for row in result["rows"]:
      w.writerow({"task": result["task"], "protocol": result["protocol"], **{
          k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS[2:9]},
          "values": ";".join(f"{v:.6g}" for v in row["values"])})
  tmp = paths["json"].with_suffix(".json.tmp")
  tmp.write_text(json.dumps(result, indent=2))
  os.replace(tmp, paths["json"])
  plot_result(result, paths["png"])
  return {k: str(v) for k, v in paths.items()}


def plot_result(result: dict, path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  readouts = result.get("readouts", READOUTS)   # results written before protocols had their own
  fig, axes = plt.subplots(1, len(readouts), figsize=(5.5 * len(readouts), 4), squeeze=False)
  for ax, r in zip(axes[0], readouts):
    for m in result["methods"]:
      rows = sorted((row for row in result["rows"] if row["method"] == m and row["readout"] == r),
                    key=lambda row: row["step"])
      steps = [row["step"] for row in rows]
      mean = np.array([row["mean"] for row in rows])
      err_key = "ci95" if result["protocol"] == "episodic" else "sem"
      err = np.array([row[err_key] or 0.0 for row in rows])
      ax.plot(steps, mean, marker="o", ms=3, label=m)
      ax.fill_between(steps, mean - err, mean + err, alpha=0.2)
    ax.set_xlabel("inner steps (unlabelled minibatches)")
    ax.set_ylabel(f"test accuracy ({r} readout)")
    err_name = "95% CI" if result["protocol"] == "episodic" else "± s.e.m."
    ax.set_title(f"{result['task']}: {r}, {len(result['seeds'])} seeds, {err_name}")
    ax.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_final_bars(results: Sequence[dict], path) -> str:
  """Fig. 4-style bars: final accuracy (± s.e.m.) per method, grouped by task."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  present = {m for r in results for m in r["final"]}
  # Merged runs (meta_objective.figures.merge_results) name each learned row by its θ.
  methods = [label for m in METHODS
             for label in (sorted(p for p in present if p.startswith("learned")) if m == "learned" else [m])
             if label in present]
  readouts = list(dict.fromkeys(r for res in results for r in res.get("readouts", READOUTS)))
  tasks = [f"{r['task']}\n({r['inner_steps']} steps)" for r in results]
  fig, axes = plt.subplots(1, len(readouts), figsize=(1.5 + 1.6 * len(results) * len(readouts)
                                                      + 3, 4), squeeze=False)
  width = 0.8 / max(1, len(methods))
  for ax, readout in zip(axes[0], readouts):
    for j, m in enumerate(methods):
      mean = [r["final"].get(m, {}).get(readout, {}).get("mean", np.nan) for r in results]
      err = [r["final"].get(m, {}).get(readout, {}).get("sem") or 0.0 for r in results]
      ax.bar(np.arange(len(results)) + (j - (len(methods) - 1) / 2) * width, mean, width,
             yerr=err, capsize=2, label=m)
    ax.set_xticks(range(len(results)), tasks, fontsize=8)
    ax.set_ylabel(f"few-shot test accuracy ({readout})")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
  # Outside the axes: with many methods an inside legend hides bars.
  axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)
  return str(path)
