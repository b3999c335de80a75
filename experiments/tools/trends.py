"""The studies' arithmetic without flags (importable by tests and by every tool): a log-linear trend of
validation against compute and where it meets a level; the paired difference of two runs' validations."""

from __future__ import annotations

import numpy as np


def paired(arm: list[dict], control: list[dict], last: int) -> dict:
  """Mean and s.e. over seeds of (arm − control), each seed's difference averaged over the last
  `last` validations both runs have."""
  steps = sorted({r["step"] for r in arm} & {r["step"] for r in control})[-last:]
  if not steps:
    return {"steps": [], "mean": None, "sem": None}
  a = {r["step"]: np.asarray(r["val_per_seed"], np.float64) for r in arm}
  c = {r["step"]: np.asarray(r["val_per_seed"], np.float64) for r in control}
  diff = np.mean([a[s] - c[s] for s in steps], axis=0)
  sem = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else None
  return {"steps": steps, "mean": float(np.mean(diff)), "sem": sem, "per_seed": diff.tolist()}


def fit_log_linear(meta_grads, accuracy) -> dict:
  """OLS of accuracy on log10(meta-gradients): {a, b, cov, residual_sd, n}."""
  x = np.log10(np.asarray(meta_grads, np.float64))
  y = np.asarray(accuracy, np.float64)
  if x.size < 3:
    raise ValueError(f"a trend needs at least 3 validations, got {x.size}")
  design = np.stack([np.ones_like(x), x], axis=1)
  coef, *_ = np.linalg.lstsq(design, y, rcond=None)
  resid = y - design @ coef
  sigma2 = float(resid @ resid) / (x.size - 2)
  cov = sigma2 * np.linalg.inv(design.T @ design)
  return {
    "a": float(coef[0]),
    "b": float(coef[1]),
    "cov": cov.tolist(),
    "residual_sd": sigma2**0.5,
    "n": int(x.size),
  }


def reach(fit: dict, target: float, samples: int, seed: int) -> dict:
  """Meta-gradients at which the fitted line reaches `target`: the point estimate and a 68 % interval
  over draws of (a, b); draws whose slope is not positive never reach it (their share is reported)."""
  a, b = fit["a"], fit["b"]
  draws = np.random.default_rng(seed).multivariate_normal([a, b], np.asarray(fit["cov"]), size=samples)
  rising = draws[:, 1] > 0
  log_g = (target - draws[rising, 0]) / draws[rising, 1]
  out = {
    "target": target,
    "meta_grads": float(10 ** ((target - a) / b)) if b > 0 else None,
    "share_of_draws_never_reaching": float(1.0 - rising.mean()),
  }
  if log_g.size:
    lo, hi = np.percentile(log_g, [16, 84])
    out["interval_68"] = [float(10**lo), float(10**hi)]
  return out
