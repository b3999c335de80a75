r"""Feature analysis (the paper's Fig. 6) and Markdown tables of evaluation results.

Fig. 6 here: θ is applied to a fresh base model for N inner steps with the evaluation's
machinery (`evaluate.LearnedRule`, seed s: base model `seed_keys(s)["base"]`, θ =
`theta_fn(s)`, unlabelled stream `default_rng([s, 0])`), and compared with that same
network untrained ("random init"):
  * receptive fields: unit k of the first layer sees x⁰ = input[:, perm], so its response
    is input @ F[k] with F[k, perm[j]] = W¹[j, k]; F[k] reshaped to the image is its filter;
  * the PCA spectrum (explained-variance ratios, sorted) of the top-layer features on test
    data, and its effective rank exp(H(p)) (1 = one direction, D = isotropic);
  * two-moons: the 2-D test points coloured by the features' first principal component,
    and the features' 2-D PCA coloured by class.
"""
from __future__ import annotations

import math
import pathlib
from typing import Callable, Sequence

import numpy as np

import base_models
from base_models import baselines as bl
from meta_objective import evaluate as ev

FIELD_METHODS = ("random_init", "learned")
_LABELS = {"random_init": "random init", "learned": "learned θ"}


# ----------------------------------------------------------------------------- analysis

def receptive_fields(w_first, perm) -> np.ndarray:
  """[n_units, input_dim]: each first-layer unit's weights in the raw (unpermuted) input order."""
  w, perm = np.asarray(w_first), np.asarray(perm)
  if perm.shape != (w.shape[0],):
    raise ValueError(f"permutation of shape {perm.shape} for first-layer W of shape {w.shape}")
  fields = np.empty((w.shape[1], w.shape[0]), w.dtype)
  fields[:, perm] = w.T
  return fields


def image_side(input_dim: int) -> int | None:
  """The side of a square image of input_dim pixels, or None (IMDB, two-moons)."""
  side = math.isqrt(int(input_dim))
  return side if side * side == input_dim and side > 1 else None


def tile_fields(fields, side: int, ncols: int, pad: int = 1) -> np.ndarray:
  """One image of the fields, each scaled to max |value| 1; NaN between tiles.

  Tile i sits at rows pad + (i // ncols)·(side + pad) and columns pad + (i % ncols)·(side + pad).
  """
  fields = np.asarray(fields, np.float64).reshape(-1, side, side)
  nrows = -(-len(fields) // ncols)
  step = side + pad
  grid = np.full((pad + nrows * step, pad + ncols * step), np.nan)
  for i, f in enumerate(fields):
    scale = np.max(np.abs(f))
    r, c = pad + (i // ncols) * step, pad + (i % ncols) * step
    grid[r:r + side, c:c + side] = f / scale if scale > 0 else f
  return grid


def pca_spectrum(features) -> np.ndarray:
  """Explained-variance ratios of the features' principal components, largest first.

  Sums to 1; all zeros when the features do not vary (e.g. dead units everywhere).
  """
  f = np.nan_to_num(np.asarray(features, np.float64))
  f = f - f.mean(axis=0, keepdims=True)
  var = np.linalg.svd(f, compute_uv=False) ** 2
  total = var.sum()
  if not np.isfinite(total) or total <= 0:
    return np.zeros_like(var)
  return np.sort(var / total)[::-1]


def effective_rank(spectrum) -> float:
  """exp(entropy) of the normalised spectrum; 0 for an all-zero spectrum."""
  p = np.asarray(spectrum, np.float64)
  p = p[p > 0]
  if not p.size:
    return 0.0
  p = p / p.sum()
  return float(np.exp(-np.sum(p * np.log(p))))


def pca_project(features, k: int = 2) -> np.ndarray:
  """[N, k]: the centred features on their top-k principal directions."""
  f = np.nan_to_num(np.asarray(features, np.float64))
  f = f - f.mean(axis=0, keepdims=True)
  _, _, vt = np.linalg.svd(f, full_matrices=False)
  proj = f @ vt[:k].T
  return np.pad(proj, ((0, 0), (0, k - proj.shape[1])))   # fewer than k feature dims


def trained_runners(task, cfg, theta_fn: Callable, inner_steps: int, seed: int,
                    chunk: int = 250) -> dict:
  """{"random_init": untrained network, "learned": the same network after N rule steps}."""
  cfg = ev.config_with_defaults(cfg)
  base_cfg = cfg.base_model
  state = base_models.init(ev.seed_keys(seed)["base"], task.input_dim,
                           base_models.layer_widths(base_cfg), base_cfg)
  learned = ev.LearnedRule(theta_fn(seed), state, cfg)
  rng = np.random.default_rng([seed, 0])
  batch = int(cfg.unroll.inner_batch_size)
  # Chunks bound the stream's memory (N·batch·D floats) at one or two compiled lengths.
  done = 0
  while done < inner_steps:
    k = min(chunk, inner_steps - done)
    learned.advance(task.unlabelled_batches(rng, k, batch))
    done += k
  return {"random_init": bl.RandomInit(state, base_cfg), "learned": learned}


# ----------------------------------------------------------------------------- plots

def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_receptive_fields(grids: dict, path, title: str) -> str:
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(grids), figsize=(5 * len(grids), 5.4), squeeze=False)
  cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
  for ax, (m, grid) in zip(axes[0], grids.items()):
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(_LABELS.get(m, m))
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return str(path)


def plot_two_moons(x, y, features: dict, path) -> str:
  """Row 1: the data coloured by the features' PC1; row 2: the features' PCA by class."""
  plt = _pyplot()
  fig, axes = plt.subplots(2, len(features), figsize=(5 * len(features), 9), squeeze=False)
  for j, (m, f) in enumerate(features.items()):
    proj = pca_project(f, 2)
    ax = axes[0, j]
    sc = ax.scatter(x[:, 0], x[:, 1], c=proj[:, 0], s=6, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="feature PC1")
    ax.set(title=f"{_LABELS.get(m, m)}: data coloured by feature PC1", xlabel="x₁", ylabel="x₂")
    ax = axes[1, j]
    for c in np.unique(y):
      ax.scatter(proj[y == c, 0], proj[y == c, 1], s=6, label=f"class {c}")
    ax.set(title=f"{_LABELS.get(m, m)}: feature PCA", xlabel="PC1", ylabel="PC2")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)


def plot_spectra(spectra: dict, path, title: str) -> str:
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for m, s in spectra.items():
    s = np.asarray(s)
    keep = s > 0   # log scale: exact zeros (rank deficiency) cannot be drawn
    ax.semilogy(np.arange(1, len(s) + 1)[keep], s[keep], marker="o", ms=3,
                label=f"{_LABELS.get(m, m)} (effective rank {effective_rank(s):.1f})")
  ax.set(xlabel="principal component", ylabel="explained variance ratio", title=title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return str(path)


def feature_figures(task, cfg, theta_fn: Callable, inner_steps: int, seed: int, out_dir,
                    max_test: int = 2000, num_fields: int = 64) -> dict:
  """Writes the Fig. 6 panels for one task into out_dir; returns files and key numbers."""
  cfg = ev.config_with_defaults(cfg)
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  runners = trained_runners(task, cfg, theta_fn, inner_steps, seed)
  x_test, y_test = task.test_set(int(max_test))
  feats = {m: np.nan_to_num(ev.batched_features(r.features, x_test, int(cfg.evaluation.test_chunk)))
           for m, r in runners.items()}
  spectra = {m: pca_spectrum(f) for m, f in feats.items()}
  files = {}
  side = image_side(task.input_dim)
  if side is not None:
    grids = {}
    for m, r in runners.items():
      fields = receptive_fields(r.state["layers"][0]["w"], r.state["perm"])[:num_fields]
      grids[m] = tile_fields(fields, side, ncols=min(8, len(fields)))
    files["receptive_fields"] = plot_receptive_fields(
        grids, out_dir / "fig6_receptive_fields.png",
        f"{task.name}: first-layer receptive fields after {inner_steps} steps (seed {seed})")
  if task.name == "two_moons":
    files["two_moons"] = plot_two_moons(x_test, y_test, feats, out_dir / "fig6_two_moons.png")
  files["pca_spectrum"] = plot_spectra(
      spectra, out_dir / "fig6_pca_spectrum.png",
      f"{task.name}: top-layer feature PCA ({len(y_test)} test examples)")
  return {"task": task.name, "inner_steps": int(inner_steps), "seed": int(seed), "files": files,
          "effective_rank": {m: effective_rank(s) for m, s in spectra.items()},
          "top_component": {m: float(s[0]) for m, s in spectra.items()},
          "spectrum": {m: s.tolist() for m, s in spectra.items()}}


# ----------------------------------------------------------------------------- tables

def _cell(entry) -> str:
  if not entry or entry.get("mean") is None:
    return "—"
  if entry.get("sem") is None:   # one seed: no standard error
    return f"{entry['mean']:.3f}"
  return f"{entry['mean']:.3f} ± {entry['sem']:.3f}"


def _learned_label(result: dict) -> str:
  theta = result.get("theta")
  if theta is None:
    return "learned"
  return "learned (untrained θ)" if theta == "random" else f"learned ({theta})"


def merge_results(results: Sequence[dict]) -> list[dict]:
  """Results of one task at one number of inner steps become one column.

  Each run's learned rule is named by its θ ("learned (untrained θ)" for --theta=random),
  so e.g. a baselines run with a random θ and a run of a shipped θ form one table column;
  a method present in both (random init) keeps the first run's value.
  """
  merged = {}
  for r in results:
    key = (r["task"], r["inner_steps"])
    final = {(_learned_label(r) if m == "learned" else m): v for m, v in r["final"].items()}
    if key not in merged:
      merged[key] = {**r, "final": dict(final), "readouts": list(r.get("readouts", ev.READOUTS))}
    else:
      into = merged[key]
      for m, v in final.items():
        into["final"].setdefault(m, v)
      into["readouts"] += [x for x in r.get("readouts", ev.READOUTS) if x not in into["readouts"]]
  return list(merged.values())


def results_markdown(results: Sequence[dict]) -> str:
  """One table per readout: rows = methods, columns = tasks, cells = final mean ± s.e."""
  results = merge_results(results)
  present = {m for r in results for m in r["final"]}
  learned = sorted(m for m in present if m.startswith("learned"))
  order = [label for m in ev.METHODS for label in (learned if m == "learned" else [m])]
  methods = [m for m in order if m in present] + sorted(present - set(order))
  readouts = list(dict.fromkeys(x for r in results for x in r["readouts"]))
  names = [r["task"] for r in results]
  # The same task at several step counts: say which column is which.
  cols = [f"{r['task']} ({r['inner_steps']} steps)" if names.count(r["task"]) > 1 else r["task"]
          for r in results]
  out = []
  for readout in readouts:
    out.append(f"### {readout} readout: final test accuracy (mean ± s.e. over seeds)\n")
    out.append("| method | " + " | ".join(cols) + " |")
    out.append("| --- |" + " --- |" * len(cols))
    for m in methods:
      cells = [_cell(r["final"].get(m, {}).get(readout)) for r in results]
      out.append(f"| {m} | " + " | ".join(cells) + " |")
    out.append("")
  return "\n".join(out)
