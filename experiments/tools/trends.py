"""The studies' arithmetic without flags (importable by tests and by every tool): a log-linear trend of
validation against compute and where it meets a level; paired differences over seeds; the floors'
levels read from a committed results file; the LABEL=PATH arguments of the study tools."""

from __future__ import annotations

import json
import pathlib

import numpy as np

# Floors drawn beside validation curves: evaluation method -> label in figures and tables.
FLOOR_NAMES = {"raw_input": "raw input", "hebbian": "Oja's rule", "pca": "PCA", "random_init": "random init"}


def paired_difference(values, base) -> dict:
  """Mean and s.e. over seeds of values − base (one entry per seed, the same seeds in both)."""
  diff = np.asarray(values, np.float64) - np.asarray(base, np.float64)
  sem = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else None
  return {"mean": float(np.mean(diff)), "sem": sem, "per_seed": diff.tolist()}


def floor_levels(results_json, methods=tuple(FLOOR_NAMES), readout: str = "ridge") -> dict:
  """{label: final accuracy} of the floor `methods` found in an evaluation's results.json."""
  final = json.loads(pathlib.Path(results_json).read_text(encoding="utf-8"))["final"]
  return {FLOOR_NAMES[m]: final[m][readout]["mean"] for m in methods if m in final}


def split_labelled(entry: str, sep: str = "=") -> tuple[str, str] | None:
  """'LABEL=PATH' -> (LABEL, PATH); None when the separator or either side is missing."""
  label, found, rest = entry.partition(sep)
  return (label, rest) if found and label and rest else None


def paired(arm: list[dict], control: list[dict], last: int) -> dict:
  """Mean and s.e. over seeds of (arm − control), each seed's difference averaged over the last
  `last` validations both runs have."""
  steps = sorted({r["step"] for r in arm} & {r["step"] for r in control})[-last:]
  if not steps:
    return {"steps": [], "mean": None, "sem": None}
  a = {r["step"]: np.asarray(r["val_per_seed"], np.float64) for r in arm}
  c = {r["step"]: np.asarray(r["val_per_seed"], np.float64) for r in control}
  return {
    "steps": steps,
    **paired_difference(np.mean([a[s] for s in steps], axis=0), np.mean([c[s] for s in steps], axis=0)),
  }


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
