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


def per_dataset_series(records: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """{dataset: (steps, hours, meta-losses)} over the updates whose batch held that dataset."""
  per = collections.defaultdict(list)
  for r in records:
    for name, v in r.get("meta_loss_per_dataset", {}).items():
      per[name].append((r["step"], r.get("elapsed_sec", 0.0) / 3600, v))
  return {name: tuple(np.array(c, np.float64) for c in zip(*pts))
          for name, pts in sorted(per.items())}


def plot_training(records: list[dict], out: pathlib.Path, smooth: int = 20) -> dict:
  """Fig. 3 analogue: meta-loss (overall and per dataset) and accuracy vs update and vs hours.

  Each update averages the few tasks its batch happened to hold, so a dataset's raw series
  is sparse and noisy: its running mean (over its own updates) is what is drawn.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  steps = np.array([r["step"] for r in records])
  hours = np.array([r.get("elapsed_sec", 0.0) for r in records]) / 3600
  loss = [r["meta_loss"] for r in records]
  acc = [r["accuracy"] for r in records]
  per = per_dataset_series(records)
  fig, axes = plt.subplots(3, 2, figsize=(11, 10))
  for col, (x, xlabel) in enumerate(((steps, "update"), (hours, "hours"))):
    ax = axes[0, col]
    ax.plot(x, loss, alpha=0.25, color="k")
    ax.plot(x, rolling_mean(loss, smooth), color="k", label="all")
    for name, (s, h, v) in per.items():
      ax.plot(s if col == 0 else h, rolling_mean(v, smooth), label=name)
    ax.set(xlabel=xlabel, ylabel="meta-loss (train tasks)",
           title=f"meta-objective (running mean of {smooth})")
    ax.legend(fontsize=8)
    ax = axes[1, col]
    ax.plot(x, acc, alpha=0.25, color="C0")
    ax.plot(x, rolling_mean(acc, smooth), color="C0")
    ax.set(xlabel=xlabel, ylabel="ridge accuracy (batch b)", title="few-shot accuracy in meta-training")
  ax = axes[2, 0]
  ax.semilogy(steps, [r["grad_norm"] for r in records])
  ax.set(xlabel="update", ylabel="meta-gradient norm", title="gradient norm (before clipping)")
  with_norm = [r for r in records if "theta_norm" in r]  # logged since the fine-tuning runs
  if with_norm:
    twin = ax.twinx()
    twin.plot([r["step"] for r in with_norm], [r["theta_norm"] for r in with_norm], color="C3")
    twin.set_ylabel("‖θ‖ (global norm)", color="C3")
  ax = axes[2, 1]
  ax.plot(hours, rolling_mean([r["meta_grads_per_sec"] for r in records], smooth))
  ax.set(xlabel="hours", ylabel="meta-gradients / s", title="throughput")
  fig.tight_layout()
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return {"updates": int(steps[-1]), "hours": float(hours[-1]),
          "meta_loss_first": float(records[0]["meta_loss"]),
          "meta_loss_last": float(records[-1]["meta_loss"]), "datasets": list(per)}
