r"""Statistics over seeds: the per-seed record, mean ± standard error, 95% intervals, summaries.

Per (method, step, readout): the mean over seeds and its standard error (sample std,
ddof=1, /√S; undefined — None — for one seed); `ci95` = t·sem with t the 97.5% quantile of
Student's t distribution with S−1 degrees of freedom (4.30 at 3 seeds, 2.26 at 10: the normal
1.96 would claim too narrow an interval over a handful of seeds). Episodic protocol: the row
pools all S·E episode accuracies: mean and the 95% interval t·std(ddof=1)/√(S·E), t with
S·E−1 degrees of freedom; `sem` stays the seed-level standard error of the per-seed means.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

from meta_unsup_rules.evaluation import protocols


@dataclasses.dataclass
class SeedResult:
  seed: int
  # accuracy[method][readout] -> list over points (fewshot: float; episodic: list of episodes)
  accuracy: dict
  seconds: dict
  info: dict


def mean_sem(values: Sequence[float]) -> tuple[float, float | None]:
  """Mean and standard error of the mean (ddof=1); sem is None for fewer than 2 values."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    raise ValueError("mean_sem of no values")
  sem = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
  return float(np.mean(v)), sem


def t95(n: int) -> float:
  """The two-sided 95% quantile of Student's t with n − 1 degrees of freedom (n >= 2)."""
  if n < 2:
    raise ValueError(f"a t interval needs at least 2 values, got {n}")
  return float(scipy_stats.t.ppf(0.975, n - 1))


def confidence_interval95(values: Sequence[float]) -> tuple[float, float | None]:
  """(mean, half-width) of the 95% CI from the t distribution, t95(n)·std(ddof=1)/√n (None for n=1)."""
  mean, sem = mean_sem(values)
  return mean, (None if sem is None else t95(len(values)) * sem)


def aggregate(seed_results: Sequence[SeedResult], methods, points, protocol="fewshot") -> list[dict]:
  """One row per method × step × readout: mean, sem (over seeds), ci95, per-seed values.

  The readouts are the accuracy keys of the first seed's result (protocols.readout_names).
  """
  rows = []
  for m in methods:
    for i, step in enumerate(points):
      for r in seed_results[0].accuracy[m]:
        per_seed = [sr.accuracy[m][r][i] for sr in seed_results]
        if protocols.get(protocol).pooled_episodes:
          pooled = [a for episodes in per_seed for a in episodes]
          per_seed = [float(np.mean(e)) for e in per_seed]
          mean, ci = confidence_interval95(pooled)
          _, sem = mean_sem(per_seed)
        else:
          mean, ci = confidence_interval95(per_seed)
          _, sem = mean_sem(per_seed)
        rows.append(
          {
            "method": m,
            "step": int(step),
            "readout": r,
            "mean": mean,
            "sem": sem,
            "ci95": ci,
            "n_seeds": len(per_seed),
            "values": [float(v) for v in per_seed],
          }
        )
  return rows


def final_summary(rows, methods, inner_steps) -> dict:
  """{method: {readout: {mean, sem}}} at the last step: what tables and bar plots show."""
  out = {}
  for m in methods:
    out[m] = {
      row["readout"]: {"mean": row["mean"], "sem": row["sem"]}
      for row in rows
      if row["method"] == m and row["step"] == inner_steps
    }
  return out


def step_line(point: int, latest: dict, readouts: Sequence[str]) -> str:
  """'step N (ridge/logistic): learned 0.412/0.398, ...' from {method: {readout: accuracy}}
  (an episodic readout's list of episodes is shown as its mean): the progress log line."""
  return f"step {point} ({'/'.join(readouts)}): " + ", ".join(
    f"{m} " + "/".join(f"{np.mean(acc[r]):.3f}" for r in readouts) for m, acc in latest.items()
  )
