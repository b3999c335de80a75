"""Every figure of the project, drawn with matplotlib from plain data (dicts, arrays) to a path.

No other module imports matplotlib: analysis and result files are computed elsewhere
(evaluation/features.py, runner.py, outputs.py; meta-training's metrics.jsonl) and
handed in, so that the numbers can be tested without drawing anything. matplotlib is
imported on the first plot, with the file-only Agg backend.

Length (~440 lines): every figure stays here so that matplotlib is imported in one module
only, and the figures share their helpers (the PNG + PDF save, gaps in series, labels).
"""

from __future__ import annotations

import collections
import os
import pathlib
from typing import Sequence

import numpy as np

from meta_unsup_rules.evaluation import protocols

# Results written before each protocol named its readouts used these two.
LEGACY_READOUTS = ("ridge", "logistic")
METHOD_LABELS = {"random_init": "random init", "learned": "learned θ"}


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def _label(method: str) -> str:
  return METHOD_LABELS.get(method, method)


def save(fig, path, dpi: int = 120, **kwargs) -> str:
  """Writes `path` (a PNG) and a vector PDF of the same figure beside it (for papers), then closes
  the figure; returns `path`."""
  plt = _pyplot()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=dpi, **kwargs)
  fig.savefig(path.with_suffix(".pdf"), **kwargs)
  plt.close(fig)
  return str(path)


def with_gaps(x, y, max_step: float, by=None):
  """(x, y) as float arrays with a NaN inserted wherever consecutive values of `by` (default x)
  differ by more than `max_step`: matplotlib then leaves a gap there instead of a straight
  segment that looks like data where there was none. `by` lets a series drawn against hours
  break where its updates are missing."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if len(x) < 2:
    return x, y
  cut = np.nonzero(np.diff(np.asarray(x if by is None else by, np.float64)) > max_step)[0] + 1
  return np.insert(x, cut, np.nan), np.insert(y, cut, np.nan)


def typical_spacing(x) -> float:
  """The median distance between consecutive x (1 for fewer than two points)."""
  d = np.diff(np.asarray(x, np.float64))
  return float(np.median(d)) if len(d) else 1.0


# ----------------------------------------------------------------------------- evaluation results


def plot_result(result: dict, path) -> None:
  """Accuracy against inner steps (± s.e.m., or 95% CI when episodic), one panel per readout."""
  plt = _pyplot()
  readouts = result.get("readouts", LEGACY_READOUTS)
  fig, axes = plt.subplots(1, len(readouts), figsize=(5.5 * len(readouts), 4), squeeze=False)
  for ax, r in zip(axes[0], readouts):
    for m in result["methods"]:
      rows = sorted(
        (row for row in result["rows"] if row["method"] == m and row["readout"] == r),
        key=lambda row: row["step"],
      )
      steps = [row["step"] for row in rows]
      mean = np.array([row["mean"] for row in rows])
      err_key = "ci95" if protocols.get(result["protocol"]).pooled_episodes else "sem"
      err = np.array([row[err_key] or 0.0 for row in rows])
      ax.plot(*with_gaps(steps, mean, 1.5 * typical_spacing(steps)), marker="o", ms=3, label=_label(m))
      ax.fill_between(steps, mean - err, mean + err, alpha=0.2)
    ax.set_xlabel("inner steps (unlabelled minibatches)")
    ax.set_ylabel(f"test accuracy ({r} readout)")
    ax.set_title(f"{r} readout", fontsize=10)
    ax.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=8)
  # One title over the panels (per-panel ones overlapped and were clipped at the right edge).
  fig.suptitle(f"{_run_name(result)}{result['task']}: {_error_name(result)}", fontsize=11)
  fig.tight_layout()
  save(fig, path)


def _error_name(result: dict) -> str:
  """What the shaded band is; with one seed there is none, and the title says so."""
  n = len(result["seeds"])
  if protocols.get(result["protocol"]).pooled_episodes:
    return f"{n} seeds, 95% CI over episodes"
  return f"{n} seeds, ± s.e.m." if n > 1 else "1 seed (no error band)"


def _run_name(result: dict) -> str:
  """ "<θ folder>: " when the result names a θ export, so a figure says whose curves it shows."""
  theta = result.get("theta")
  return f"θ {pathlib.Path(str(theta)).name}, " if theta and str(theta) != "random" else ""


def plot_final_accuracy(
  x, finals: Sequence[dict], methods, path, xlabel: str, ylabel: str, title: str, categorical: bool = False
) -> None:
  """Final accuracy (± s.e.m.) against x, one line per method, one panel per readout.

  finals[i] is the `final` summary ({method: {readout: {mean, sem}}}) of the run at x[i].
  """
  plt = _pyplot()
  readouts = list(finals[0][methods[0]])
  positions = list(range(len(x))) if categorical else list(x)
  fig, axes = plt.subplots(1, len(readouts), figsize=(5.5 * len(readouts), 4), squeeze=False)
  for ax, r in zip(axes[0], readouts):
    for m in methods:
      mean = [f[m][r]["mean"] for f in finals]
      err = [f[m][r]["sem"] or 0.0 for f in finals]
      ax.errorbar(positions, mean, yerr=err, marker="o", capsize=3, label=_label(m))
    if categorical:
      ax.set_xticks(positions, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} ({r})")
    ax.set_title(f"{r} readout", fontsize=10)
    ax.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=8)
  fig.suptitle(title, fontsize=11)  # one title over the panels: it names the run or θ, and is long
  fig.tight_layout()
  save(fig, path)


def plot_sweep(sweep_result: dict, path) -> None:
  """Final accuracy vs sweep value (Fig. 5), one line per method, one panel per readout."""
  values = sweep_result["values"]
  plot_final_accuracy(
    values,
    [sweep_result["final"][v] for v in values],
    sweep_result["methods"],
    path,
    sweep_result["sweep"],
    f"test accuracy after {sweep_result['inner_steps']} steps",
    f"{_run_name(sweep_result)}{sweep_result['task']}: {sweep_result['sweep']} sweep, "
    f"{_seeds(sweep_result)}± s.e.m.",
    categorical=True,
  )


def plot_curve(curve: dict, path) -> None:
  """Final few-shot accuracy (± s.e.m.) of θ snapshots against meta-training updates."""
  points = curve["points"]
  plot_final_accuracy(
    [p["updates"] for p in points],
    [p["final"] for p in points],
    curve["methods"],
    path,
    "meta-training updates of θ (0: untrained)",
    f"test accuracy after {curve['inner_steps']} inner steps",
    f"{_curve_run(curve)}{curve['task']} (held out): {_seeds(curve)}± s.e.m.",
  )


def _seeds(result: dict) -> str:
  """ "N seeds, " when the result lists its seeds (older sweep files do not)."""
  return f"{len(result['seeds'])} seeds, " if result.get("seeds") else ""


def _curve_run(curve: dict) -> str:
  """ "<folder the snapshots share>: " so the figure names the run its θs come from."""
  thetas = [str(p["theta"]) for p in curve["points"] if p.get("theta") not in (None, "random")]
  if not thetas:
    return ""
  common = os.path.commonpath(thetas) if len(thetas) > 1 else str(pathlib.Path(thetas[0]).parent)
  return f"{common}: " if common else ""


def plot_final_bars(results: Sequence[dict], methods: Sequence[str], path) -> str:
  """Fig. 4-style bars: final accuracy (± s.e.m.) per method, grouped by task.

  `results` are merged runs (evaluation.outputs.merge_results), `methods` their bars in order.
  """
  plt = _pyplot()
  readouts = list(dict.fromkeys(r for res in results for r in res.get("readouts", LEGACY_READOUTS)))
  tasks = [f"{r['task']}\n({r['inner_steps']} steps)" for r in results]
  fig, axes = plt.subplots(
    1, len(readouts), figsize=(1.5 + 1.6 * len(results) * len(readouts) + 3, 4), squeeze=False
  )
  width = 0.8 / max(1, len(methods))
  for ax, readout in zip(axes[0], readouts):
    for j, m in enumerate(methods):
      mean = [r["final"].get(m, {}).get(readout, {}).get("mean", np.nan) for r in results]
      err = [r["final"].get(m, {}).get(readout, {}).get("sem") or 0.0 for r in results]
      ax.bar(
        np.arange(len(results)) + (j - (len(methods) - 1) / 2) * width,
        mean,
        width,
        yerr=err,
        capsize=2,
        label=m,
      )
    ax.set_xticks(range(len(results)), tasks, fontsize=8)
    ax.set_ylabel(f"few-shot test accuracy ({readout})")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
  # Outside the axes: with many methods an inside legend hides bars.
  axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  return save(fig, path, bbox_inches="tight")


# ----------------------------------------------------------------------------- Fig. 6 features


def plot_receptive_fields(grids: dict, path, title: str) -> str:
  """One panel per method: its tiled first-layer filters (NaN gaps drawn grey)."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(grids), figsize=(5 * len(grids), 5.4), squeeze=False)
  cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
  for ax, (m, grid) in zip(axes[0], grids.items()):
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(_label(m))
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  return save(fig, path)


def plot_two_moons(x, y, projections: dict, path) -> str:
  """Row 1: the data coloured by the features' PC1; row 2: the features' PCA by class.

  projections[method] is [N, 2]: the features on their top two principal directions.
  """
  plt = _pyplot()
  fig, axes = plt.subplots(2, len(projections), figsize=(5 * len(projections), 9), squeeze=False)
  for j, (m, proj) in enumerate(projections.items()):
    ax = axes[0, j]
    sc = ax.scatter(x[:, 0], x[:, 1], c=proj[:, 0], s=6, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="feature PC1")
    ax.set(title=f"{_label(m)}: data coloured by feature PC1", xlabel="x₁", ylabel="x₂")
    ax = axes[1, j]
    for c in np.unique(y):
      ax.scatter(proj[y == c, 0], proj[y == c, 1], s=6, label=f"class {c}")
    ax.set(title=f"{_label(m)}: feature PCA", xlabel="PC1", ylabel="PC2")
    ax.legend(fontsize=8)
  fig.tight_layout()
  return save(fig, path, dpi=110)


def plot_spectra(spectra: dict, effective_ranks: dict, path, title: str) -> str:
  """Explained-variance ratios per principal component (log scale), one line per method."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for m, s in spectra.items():
    s = np.asarray(s)
    keep = s > 0  # log scale: exact zeros (rank deficiency) cannot be drawn
    ax.semilogy(
      np.arange(1, len(s) + 1)[keep],
      s[keep],
      marker="o",
      ms=3,
      label=f"{_label(m)} (effective rank {effective_ranks[m]:.1f})",
    )
  ax.set(xlabel="principal component", ylabel="explained variance ratio", title=title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  return save(fig, path)


# ----------------------------------------------------------------------------- Fig. 3 training


def rolling_mean(values, window: int) -> np.ndarray:
  """Running mean over the last `window` values (fewer at the start)."""
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
  return {name: tuple(np.array(c, np.float64) for c in zip(*pts)) for name, pts in sorted(per.items())}


def plot_training(
  records: list[dict], out: pathlib.Path, smooth: int = 20, title: str = "", floors: dict | None = None
) -> dict:
  """Fig. 3 analogue: meta-loss (overall and per dataset) and accuracy vs update and vs hours.

  `records` are the lines of a meta-training metrics.jsonl. Each update averages the few
  tasks its batch happened to hold, so a dataset's raw series is sparse and noisy: its
  running mean (over its own updates) is what is drawn. Records with `val_accuracy` (runs
  with meta-validation, distributed/validation.py) add a row: validation accuracy ± s.e.
  against updates and against meta-gradients received (`meta_grads_total`; hours for
  records without it), the best one marked. Updates missing from `records` are gaps in every
  series against updates, and so is a stretch of a dataset's series more than three times
  its typical spacing long; `title` (e.g. the run's folder) heads the figure. `floors`
  ({label: accuracy}, e.g. raw input and Oja's rule on the validation task and seeds) are drawn as
  horizontal reference lines in the validation row.
  """
  plt = _pyplot()
  out = pathlib.Path(out)
  steps = np.array([r["step"] for r in records])
  hours = np.array([r.get("elapsed_sec", 0.0) for r in records]) / 3600
  loss = [r["meta_loss"] for r in records]
  acc = [r["accuracy"] for r in records]
  per = per_dataset_series(records)
  val = [r for r in records if r.get("val_accuracy") is not None]
  fig, axes = plt.subplots(4 if val else 3, 2, figsize=(11, 13.3 if val else 10))

  def gapped(x, y, max_step=1.0, by=steps):
    # Gaps are found on the update axis (its spacing is known) and drawn on either axis.
    return with_gaps(x, y, max_step, by=by)

  for col, (x, xlabel) in enumerate(((steps, "update"), (hours, "hours"))):
    ax = axes[0, col]
    ax.plot(*gapped(x, loss), alpha=0.25, color="0.5", lw=0.8, label="all datasets, per update")
    for name, (s, h, v) in per.items():
      gap = max(1.0, 3 * typical_spacing(s))
      ax.plot(*gapped(s if col == 0 else h, rolling_mean(v, smooth), gap, by=s), label=name, lw=1)
    # On top of the datasets' lines, which it would otherwise hide under.
    ax.plot(*gapped(x, rolling_mean(loss, smooth)), color="k", lw=2, label="all datasets", zorder=5)
    ax.set(
      xlabel=xlabel, ylabel="meta-loss (train tasks)", title=f"meta-objective (running mean of {smooth})"
    )
    ax.legend(fontsize=8)
    ax = axes[1, col]
    ax.plot(*gapped(x, acc), alpha=0.25, color="C0", label="per update")
    ax.plot(*gapped(x, rolling_mean(acc, smooth)), color="C0", label=f"running mean of {smooth}")
    ax.set(xlabel=xlabel, ylabel="ridge accuracy (batch b)", title="few-shot accuracy in meta-training")
    ax.legend(fontsize=8)
  ax = axes[2, 0]
  lines = ax.semilogy(*with_gaps(steps, [r["grad_norm"] for r in records], 1.0), label="meta-gradient norm")
  ax.set(xlabel="update", ylabel="meta-gradient norm (before clipping)", title="meta-gradient and θ norms")
  with_norm = [r for r in records if "theta_norm" in r]  # runs before the θ-norm metric lack it
  if with_norm:
    twin = ax.twinx()
    lines += twin.plot(
      *with_gaps([r["step"] for r in with_norm], [r["theta_norm"] for r in with_norm], 1.0),
      color="C3",
      label="‖θ‖ (right axis)",
    )
    twin.set_ylabel("‖θ‖ (global norm)", color="C3")
    twin.ticklabel_format(axis="y", useOffset=False)  # an offset text would sit on the title
  ax.legend(lines, [line.get_label() for line in lines], fontsize=8)
  ax = axes[2, 1]
  ax.plot(hours, rolling_mean([r["meta_grads_per_sec"] for r in records], smooth))
  ax.set(xlabel="hours", ylabel=f"meta-gradients / s (running mean of {smooth})", title="throughput")
  best = _plot_validation(axes[3], val, floors or {}) if val else None
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  save(fig, out, dpi=110)
  return {
    "updates": int(steps[-1]),
    "hours": float(hours[-1]),
    "meta_loss_first": float(records[0]["meta_loss"]),
    "meta_loss_last": float(records[-1]["meta_loss"]),
    "datasets": list(per),
    **({"val_best": best} if best else {}),
  }


def _plot_validation(row, val: list[dict], floors: dict) -> dict:
  """Validation accuracy ± s.e. vs update (left) and vs meta-gradients (right); the best; the
  floors as dashed horizontal lines.

  A validation missing from the schedule (more than 1.5 times the usual spacing) is a gap."""
  acc = np.array([r["val_accuracy"] for r in val], np.float64)
  sem = np.array([r.get("val_sem") or 0.0 for r in val], np.float64)  # None: one seed
  i = int(np.argmax(acc))
  if all("meta_grads_total" in r for r in val):
    right = ([r["meta_grads_total"] for r in val], "meta-gradients received")
  else:
    right = ([r.get("elapsed_sec", 0.0) / 3600 for r in val], "hours")
  steps = np.array([r["step"] for r in val], np.float64)
  gap = 1.5 * typical_spacing(steps)
  for ax, (x, xlabel) in zip(row, ((steps, "update"), right)):
    x = np.asarray(x, np.float64)
    ax.errorbar(x, acc, yerr=sem, fmt="o", ms=3, capsize=2, color="C2", label="mean ± s.e. over seeds")
    # The line follows the update schedule's gaps on both axes (the right one has no spacing of its own).
    _, line = with_gaps(steps, acc, gap)
    xs = np.full(len(line), np.nan)
    xs[~np.isnan(line)] = x
    ax.plot(xs, line, color="C2", lw=1)
    ax.plot(
      [x[i]], [acc[i]], marker="*", ms=12, color="C3", ls="none", label=f"best: update {val[i]['step']}"
    )
    _floor_lines(ax, floors, 4)
    ax.set(xlabel=xlabel, ylabel="validation accuracy", title="meta-validation")
    ax.legend(fontsize=8)
  return {"update": int(val[i]["step"]), "accuracy": float(acc[i]), "sem": val[i].get("val_sem")}


def _floor_lines(ax, floors: dict, first_colour: int) -> None:
  """Each floor ({label: accuracy}) as a dashed horizontal line, labelled with its value."""
  for j, (label, value) in enumerate(floors.items()):
    ax.axhline(value, color=f"C{first_colour + j}", ls="--", lw=1, label=f"{label} {value:.3f}")


def _curves_with_errors(ax, curves: dict, spread: float = 0.0) -> None:
  """One errorbar line per curve ({label: [(x, mean, sem)]}); `spread` shifts neighbours apart on x."""
  for i, (label, points) in enumerate(curves.items()):
    x, mean, sem = (np.array(v, np.float64) for v in zip(*points))
    ax.errorbar(
      x + spread * (i - len(curves) / 2),
      mean,
      yerr=sem,
      marker="o",
      ms=3,
      capsize=2,
      lw=1.2,
      color=f"C{i}",
      label=label,
    )


def plot_arms(curves: dict, floors: dict, path, title: str) -> str:
  """Validation accuracy ± s.e. against update, one line per arm ({label: [(update, mean, sem)]}),
  with the floors ({label: accuracy}) as dashed horizontal lines."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  _curves_with_errors(ax, curves, spread=3)
  _floor_lines(ax, floors, len(curves))
  ax.set(xlabel="update (lineage)", ylabel="validation accuracy (mean ± s.e. over seeds)", title=title)
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  return save(fig, path, dpi=110)


def plot_rule_parts(results, path) -> str:
  """Paired difference to the θ as released (mean ± s.e. over seeds) of each switched-off part, one
  panel per result (experiments.tools.rule_parts: one θ on one task each)."""
  plt = _pyplot()
  results = results if isinstance(results, (list, tuple)) else [results]
  names = [n for n in results[0]["conditions"] if n != "as released"]
  fig, axes = plt.subplots(
    1, len(results), figsize=(5.2 * len(results), 0.32 * len(names) + 1.6), squeeze=False
  )
  for ax, result in zip(axes[0], results):
    c = result["conditions"]
    means = [c[n]["paired_vs_released"]["mean"] if n in c else np.nan for n in names]
    sems = [c[n]["paired_vs_released"]["sem"] or 0.0 if n in c else 0.0 for n in names]
    y = np.arange(len(names))
    ax.barh(y, means, xerr=sems, color=["C3" if m < 0 else "C2" for m in means], alpha=0.8, capsize=2)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    base = c["as released"]
    ax.set(
      xlabel="accuracy − as released (paired, ± s.e.)",
      title=f"θ {pathlib.Path(str(result['theta'])).name} on {result['task']}\n"
      f"(as released {base['mean']:.3f})",
    )
    ax.title.set_fontsize(9)
  fig.tight_layout()
  return save(fig, path, dpi=110)


def plot_geometry(result: dict, path) -> str:
  """Per θ (colour) and layer (panel): tangential share of ΔW and angular step against inner steps."""
  plt = _pyplot()
  thetas = list(result["thetas"])
  num_layers = max(len(t["layers"]) for t in result["thetas"].values())
  fig, axes = plt.subplots(2, num_layers, figsize=(3.2 * num_layers, 5.6), squeeze=False)
  for c, name in enumerate(thetas):
    t = result["thetas"][name]
    for l, layer in enumerate(t["layers"]):
      steps = np.arange(1, len(layer["angle_mean"]) + 1)
      label = pathlib.Path(name).name if l == 0 else None
      axes[0, l].plot(steps, layer["tangential_share"], color=f"C{c}", label=label)
      axes[1, l].plot(steps, layer["angle_mean"], color=f"C{c}")
      axes[0, l].set_title(f"layer {l + 1}")
  for ax in axes.ravel():
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
  axes[0, 0].set_ylabel("tangential share of ‖ΔW‖²")
  axes[1, 0].set_ylabel("angular step (rad, mean over units)")
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(f"{result['task']}, seed {result['seed']}")
  fig.tight_layout()
  return save(fig, path, dpi=110)


def plot_curves_by_label(curves: dict, path, title: str) -> str:
  """Accuracy (mean ± s.e.) against inner steps, one line per label: {label: {step: (mean, sem)}}."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  for i, (label, c) in enumerate(curves.items()):
    steps = sorted(c)
    mean = np.array([c[s][0] for s in steps])
    sem = np.array([c[s][1] for s in steps])
    ax.plot(steps, mean, color=f"C{i}", label=label, marker="o", markersize=3)
    ax.fill_between(steps, mean - sem, mean + sem, color=f"C{i}", alpha=0.2)
  ax.set_xlabel("inner steps")
  ax.set_ylabel("few-shot test accuracy")
  ax.set_title(title)
  ax.legend(fontsize=8)
  fig.tight_layout()
  return save(fig, path, dpi=110)


def plot_compute_curve(curves: dict, floors: dict, fit: dict | None, path) -> str:
  """Validation accuracy ± s.e. against meta-gradients on a log axis, one line per run
  ({label: [(meta-gradients, mean, sem)]}), the floors as dashed lines and, with a fit
  (experiments.tools.compute_curve), its line extended to where it meets the floors."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  xmax = max(p[0] for points in curves.values() for p in points)
  _curves_with_errors(ax, curves)
  if fit is not None:
    reached = [r["meta_grads"] for r in fit.get("reach", {}).values() if r.get("meta_grads")]
    hi = max([xmax, *reached]) * 1.5
    xs = np.logspace(np.log10(min(p[0] for c in curves.values() for p in c)), np.log10(hi), 100)
    ax.plot(xs, fit["a"] + fit["b"] * np.log10(xs), "k:", lw=1.2, label=f"fit: {fit['b']:+.3f} per decade")
  _floor_lines(ax, floors, len(curves))
  ax.set_xscale("log")
  ax.set(
    xlabel="meta-gradients (lineage)",
    ylabel="validation accuracy (mean ± s.e. over seeds)",
    title="Paper track: validation against meta-training compute",
  )
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3, which="both")
  fig.tight_layout()
  return save(fig, path, dpi=110)
