"""How noisy a meta-gradient is: statistics of many meta-gradients of one θ from independent tasks.

`num` workers (distributed/worker.py, in this process), each on its own freshly drawn task, each
return one truncated-backprop meta-gradient (the first truncation of their task) for the same θ.
From them: for each group size n, the mean cosine between the means of disjoint groups of n
(the agreement of two learner updates averaging n meta-gradients; ~1 when the signal dominates,
~0 for noise), and the projection of the mean meta-gradient on θ's mixing weights of the ΔW merge
(−g·w > 0: a gradient step grows the mixing weights, i.e. the size of the rule's learned change).
"""

from __future__ import annotations

import numpy as np

from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import export


def _flat(grads) -> np.ndarray:
  return np.concatenate([np.ravel(v) for v in export.flatten_tree(grads).values()]).astype(np.float64)


def _cosine(a, b) -> float:
  return float(np.dot(a, b) / np.sqrt((np.dot(a, a) + 1e-30) * (np.dot(b, b) + 1e-30)))


def group_cosines(vectors: np.ndarray, n: int) -> dict:
  """Mean ± s.e. of the cosine between means of disjoint consecutive groups of n (pairs of groups)."""
  groups = len(vectors) // n
  means = [vectors[i * n : (i + 1) * n].mean(axis=0) for i in range(groups)]
  cos = [_cosine(means[2 * i], means[2 * i + 1]) for i in range(groups // 2)]
  if not cos:
    return {"n": n, "pairs": 0, "mean": None, "sem": None}
  sem = float(np.std(cos, ddof=1) / np.sqrt(len(cos))) if len(cos) > 1 else None
  return {"n": n, "pairs": len(cos), "mean": float(np.mean(cos)), "sem": sem}


def meta_gradient_noise(cfg, theta, num: int, group_sizes, seed: int = 0, log=print) -> dict:
  """Meta-gradient statistics of θ over `num` independent tasks (module docstring)."""
  flats, merge = [], []
  merge_w = np.ravel(np.asarray(theta["forward"]["merge"]["w"], np.float64))
  for i in range(num):
    w = worker_lib.TaskWorker(cfg, seed, worker_id=i)
    out = w.compute_gradient(theta, 0)
    flats.append(_flat(out.grads))
    merge.append(-float(np.dot(np.ravel(out.grads["forward"]["merge"]["w"]), merge_w)))
    if (i + 1) % 8 == 0:
      log(f"  {i + 1}/{num} meta-gradients")
  vectors = np.stack(flats)
  norms = np.linalg.norm(vectors, axis=1)
  return {
    "num": num,
    "norm_mean": float(norms.mean()),
    "norm_of_mean": float(np.linalg.norm(vectors.mean(axis=0))),
    "group_cosines": [group_cosines(vectors, int(n)) for n in group_sizes if 2 * int(n) <= num],
    "descent_along_mixing_weights": {
      "mean": float(np.mean(merge)),
      "sem": float(np.std(merge, ddof=1) / np.sqrt(num)) if num > 1 else None,
    },
  }
