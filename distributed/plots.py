"""Meta-training curves: meta-loss overall and per dataset, accuracy, gradient norm, throughput."""
from __future__ import annotations

import collections
import pathlib

import numpy as np


def rolling_mean(values, window: int) -> np.ndarray:
  values = np.asarray(values, np.float64)
  if window <= 1 or len(values) < 2:
    return values
  window = min(window, len(values))
  c = np.cumsum(np.insert(values, 0, 0.0))
  head = c[1:window] / np.arange(1, window)
  return np.concatenate([head, (c[window:] - c[:-window]) / window])


def plot_training(records: list[dict], out: pathlib.Path, smooth: int = 20) -> dict:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  steps = np.array([r["step"] for r in records])
  hours = np.array([r.get("elapsed_sec", 0.0) for r in records]) / 3600
  fig, axes = plt.subplots(2, 2, figsize=(11, 7))
  ax = axes[0, 0]
  ax.plot(steps, [r["meta_loss"] for r in records], alpha=0.25, color="k")
  ax.plot(steps, rolling_mean([r["meta_loss"] for r in records], smooth), color="k", label="all")
  per = collections.defaultdict(list)
  for r in records:
    for name, v in r.get("meta_loss_per_dataset", {}).items():
      per[name].append((r["step"], v))
  for name, pts in sorted(per.items()):
    s, v = zip(*pts)
    ax.plot(s, rolling_mean(v, smooth), label=name)
  ax.set(xlabel="update", ylabel="meta-loss (train tasks)", title="meta-objective")
  ax.legend(fontsize=8)
  ax = axes[0, 1]
  ax.plot(steps, rolling_mean([r["accuracy"] for r in records], smooth))
  ax.set(xlabel="update", ylabel="ridge accuracy (batch b)", title="few-shot accuracy in meta-training")
  ax = axes[1, 0]
  ax.semilogy(steps, [r["grad_norm"] for r in records])
  ax.set(xlabel="update", ylabel="meta-gradient norm", title="gradient norm (before clipping)")
  ax = axes[1, 1]
  ax.plot(hours, rolling_mean([r["meta_grads_per_sec"] for r in records], smooth))
  ax.set(xlabel="hours", ylabel="meta-gradients / s", title="throughput")
  fig.tight_layout()
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return {"updates": int(steps[-1]), "hours": float(hours[-1]),
          "meta_loss_first": float(records[0]["meta_loss"]), "meta_loss_last": float(records[-1]["meta_loss"])}
