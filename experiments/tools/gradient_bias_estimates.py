"""Is the truncated-backprop meta-gradient biased? It against the full-horizon gradient, task by task.

For each of `num_tasks` freshly drawn meta-training tasks (one worker's draw each: the task, the
base model's initialisation and every batch of the whole horizon, fixed in advance), two
estimates of the gradient of the same objective — the task's mean meta-loss over all
`horizon` inner steps — with respect to θ's ΔW mixing weights (`forward/merge/w`, 12 numbers):

* **truncated backprop**: the mean over the task's truncations of k steps of their
  meta-gradients, the state's gradient stopped at every truncation's start (what the workers
  send the learner, summed over a whole task);
* **full horizon**: central finite differences through the whole unroll, θ ± σ·u on the same
  batches (common random numbers), so that the only error is O(σ²) — no estimator noise. With σ
  larger than the scale of the unroll's chaotic wiggles it is the gradient of the σ-smoothed
  objective, which is what ES and PES estimate too. `directions="coordinates"` takes u along each
  mixing weight (24 unrolls a task: the whole 12-vector); `"radial"` only along w/‖w‖ (2 unrolls:
  the projection on the weights, not the cosine). Both estimates are compared in the span of the
  directions (for "radial" the cosine is then only the sign of agreement). `"random"` is
  antithetic ES in the 12 mixing weights: `num_directions` Gaussian directions u per task (its own
  draw), the estimate mean_j D_j·u_j with D_j the central difference along u_j (E[u uᵀ] = I makes
  it unbiased for the smoothed 12-vector, at 2·num_directions unrolls a task instead of 24; its
  noise shows in its split-half cosine), compared with the whole truncated-backprop 12-vector.

Over tasks: the cosine between the two mean gradients (s.e. by bootstrap over tasks), the mean
per-task cosine, the projection of each on the mixing weights (−g·w > 0: a gradient step grows
the weights, i.e. the size of the rule's learned change) with standard errors, and, as the
yardstick for noise, each estimate's split-half cosine (the mean of half the tasks against the
other half). A cross cosine near the split-half cosines says the difference is noise; well below
them, a bias of truncation at this horizon.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import rule


def _mixing_weights(theta) -> np.ndarray:
  return np.asarray(theta["forward"]["merge"]["w"], np.float64)


def _with_mixing_weights(theta, w: np.ndarray):
  forward = dict(theta["forward"])
  forward["merge"] = dict(forward["merge"], w=np.asarray(w, np.float32))
  return dict(theta, forward=forward)


def _cosine(a, b) -> float:
  return float(np.dot(a, b) / np.sqrt((np.dot(a, a) + 1e-30) * (np.dot(b, b) + 1e-30)))


def _mean_sem(values) -> dict:
  v = np.asarray(values, np.float64)
  sem = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None
  return {"mean": float(v.mean()), "sem": sem}


def draw_task(cfg, seed: int, task_id: int, horizon: int, k: int):
  """A worker's fresh task with its initial base model and the batches of `horizon` steps."""
  w = worker_lib.TaskWorker(cfg, seed, worker_id=task_id)
  w.new_task()
  batches = [w.truncation_batches(k) for _ in range(horizon // k)]
  return w, batches


DIRECTIONS = ("coordinates", "radial", "random")


def directions_for(
  w: np.ndarray, kind: str, rng: np.random.Generator | None = None, num: int = 2
) -> np.ndarray:
  """Rows u of the finite differences (module docstring): orthonormal for "coordinates" and
  "radial", `num` standard Gaussian draws from `rng` for "random"."""
  if kind == "coordinates":
    return np.eye(len(w))
  if kind == "radial":
    return (w / (np.linalg.norm(w) + 1e-12))[None, :]
  if kind == "random":
    return rng.standard_normal((num, len(w)))
  raise ValueError(f"directions={kind!r}: expected one of {DIRECTIONS}")


def es_estimate(along: np.ndarray, directions: np.ndarray) -> np.ndarray:
  """mean_j along_j · u_j: with Gaussian rows u_j (E[u uᵀ] = I) an unbiased estimate of g from the
  directional derivatives along_j = g·u_j."""
  return directions.T @ along / len(directions)


def task_gradients(
  fns, theta, worker, batches, sigma: float, directions: np.ndarray, random: bool = False
) -> dict:
  """Both estimates (module docstring) for one task, in the span of orthonormal `directions`, or
  with `random` (Gaussian directions) the whole truncated-backprop 12-vector against the ES
  estimate; the losses are the task's mean meta-loss."""
  num_classes = worker.task.num_classes
  start = worker.estimator.reference_state()
  state, grads, losses = start, [], []
  for b in batches:
    loss, _, state, g = fns.meta_gradient(theta, state, b, num_classes=num_classes)
    grads.append(np.asarray(g["forward"]["merge"]["w"], np.float64))
    losses.append(float(loss))
  mean_grad = np.mean(grads, axis=0)
  tbptt = mean_grad if random else directions.T @ (directions @ mean_grad)

  def full_loss(t):
    s, total = start, []
    for b in batches:
      loss, _, s = fns.unroll_loss(t, s, b, num_classes=num_classes)
      total.append(float(loss))
    return float(np.mean(total))

  w0 = _mixing_weights(theta)
  along = np.zeros(len(directions))
  for j, u in enumerate(directions):
    plus = full_loss(_with_mixing_weights(theta, w0 + sigma * u))
    minus = full_loss(_with_mixing_weights(theta, w0 - sigma * u))
    along[j] = (plus - minus) / (2 * sigma)
  full = es_estimate(along, directions) if random else directions.T @ along
  return {"tbptt": tbptt, "full": full, "loss": float(np.mean(losses)), "dataset": worker.task.dataset}


def _bootstrap_cosine(a: np.ndarray, b: np.ndarray, rng, n: int = 1000) -> float:
  idx = rng.integers(0, len(a), size=(n, len(a)))
  return float(np.std([_cosine(a[i].mean(0), b[i].mean(0)) for i in idx], ddof=1))


def _split_half(v: np.ndarray) -> float | None:
  h = len(v) // 2
  return _cosine(v[:h].mean(0), v[h : 2 * h].mean(0)) if h >= 1 else None


def summarise(tbptt: np.ndarray, full: np.ndarray, w: np.ndarray, seed: int = 0) -> dict:
  """The statistics of the module docstring from per-task gradients (tasks × 12)."""
  rng = np.random.default_rng(seed)
  mean_t, mean_f = tbptt.mean(0), full.mean(0)
  return {
    "cosine_of_means": _cosine(mean_t, mean_f),
    "cosine_of_means_sem": _bootstrap_cosine(tbptt, full, rng) if len(tbptt) > 1 else None,
    "per_task_cosine": _mean_sem([_cosine(a, b) for a, b in zip(tbptt, full)]),
    "split_half_cosine": {"tbptt": _split_half(tbptt), "full": _split_half(full)},
    "descent_along_mixing_weights": {
      "tbptt": _mean_sem(-tbptt @ w),
      "full": _mean_sem(-full @ w),
    },
    "norm_of_mean": {"tbptt": float(np.linalg.norm(mean_t)), "full": float(np.linalg.norm(mean_f))},
    "mean_gradient": {
      "terms": list(rule.WEIGHT_TERMS),
      "tbptt": mean_t.tolist(),
      "full": mean_f.tolist(),
    },
  }


def truncation_bias(
  cfg,
  theta,
  num_tasks: int,
  horizon: int,
  sigma: float,
  directions: str = "coordinates",
  seed: int = 0,
  log=print,
  earlier_tasks: list | None = None,
  num_directions: int = 2,
) -> dict:
  """Per-task estimates over `num_tasks` fresh tasks, and their `summarise` statistics.

  `earlier_tasks` (the "tasks" list of an earlier result with the same θ, settings and seed) are
  tasks 0..len-1, kept as they are: only the rest are computed, so a 32-task result extended to 64
  equals a 64-task run."""
  k = int(min(cfg.unroll.lengths))
  if horizon < k or horizon % k:
    raise ValueError(f"horizon={horizon} must be a positive multiple of the truncation length {k}")
  if not sigma > 0:
    raise ValueError(f"sigma={sigma} must be > 0")
  if directions not in DIRECTIONS:
    raise ValueError(f"directions={directions!r}: expected one of {DIRECTIONS}")
  if directions == "random" and num_directions < 1:
    raise ValueError(f"num_directions={num_directions} must be >= 1")
  theta = jax.tree_util.tree_map(np.asarray, theta)
  w = _mixing_weights(theta)
  fixed = None if directions == "random" else directions_for(w, directions)
  fns = worker_lib.unroll.make_unroll_fns(cfg)
  per_task = [
    {
      "dataset": t["dataset"],
      "loss": t["loss"],
      "tbptt": np.asarray(t["tbptt"]),
      "full": np.asarray(t["full"]),
    }
    for t in (earlier_tasks or [])[:num_tasks]
  ]
  first, start = len(per_task), time.monotonic()
  for i in range(first, num_tasks):
    worker, batches = draw_task(cfg, seed, i, horizon, k)
    if fixed is None:  # each task its own directions, from its own stream (extending stays exact)
      basis = directions_for(w, "random", np.random.default_rng([seed, i, 0xE5]), num_directions)
    else:
      basis = fixed
    per_task.append(task_gradients(fns, theta, worker, batches, sigma, basis, random=fixed is None))
    done = i + 1 - first
    eta = (time.monotonic() - start) / done * (num_tasks - i - 1)
    log(f"  task {i + 1}/{num_tasks} ({per_task[-1]['dataset']}), ETA {eta / 60:.1f} min")
  tbptt = np.stack([t["tbptt"] for t in per_task])
  full = np.stack([t["full"] for t in per_task])
  return {
    "num_tasks": num_tasks,
    "horizon": horizon,
    "truncation": k,
    "sigma": sigma,
    "directions": directions,
    **({"num_directions": num_directions} if directions == "random" else {}),
    **summarise(tbptt, full, _mixing_weights(theta), seed),
    "tasks": [
      {"dataset": t["dataset"], "loss": t["loss"], "tbptt": t["tbptt"].tolist(), "full": t["full"].tolist()}
      for t in per_task
    ],
  }
