r"""What the learned rule's features look like (the paper's Fig. 6).

θ is applied to a fresh base model for N inner steps with the evaluation's machinery
(`LearnedRule`; seed s: base model `runner.seed_keys(s)["base"]`, θ = `theta_fn(s)`,
unlabelled stream `default_rng([s, 0])`), and compared with that same network untrained
("random init"):
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
from typing import Callable

import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.base_models import baselines as bl
from meta_unsup_rules.evaluation import plots, protocols, runner
from meta_unsup_rules.evaluation.learned_rule import LearnedRule

FIELD_METHODS = ("random_init", "learned")


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
    grid[r : r + side, c : c + side] = f / scale if scale > 0 else f
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
  return np.pad(proj, ((0, 0), (0, k - proj.shape[1])))  # fewer than k feature dims


def trained_runners(task, cfg, theta_fn: Callable, inner_steps: int, seed: int, chunk: int = 250) -> dict:
  """{"random_init": untrained network, "learned": the same network after N rule steps}."""
  base_cfg = cfg.base_model
  state = base_models.init(
    runner.seed_keys(seed)["base"], task.input_dim, base_models.layer_widths(base_cfg), base_cfg
  )
  learned = LearnedRule(theta_fn(seed), state, cfg)
  rng = np.random.default_rng([seed, 0])
  batch = int(cfg.unroll.inner_batch_size)
  # Chunks bound the stream's memory (N·batch·D floats) at one or two compiled lengths.
  done = 0
  while done < inner_steps:
    k = min(chunk, inner_steps - done)
    learned.advance(task.unlabelled_batches(rng, k, batch))
    done += k
  return {"random_init": bl.RandomInit(state, base_cfg), "learned": learned}


def feature_figures(
  task,
  cfg,
  theta_fn: Callable,
  inner_steps: int,
  seed: int,
  out_dir,
  max_test: int = 2000,
  num_fields: int = 64,
) -> dict:
  """Writes the Fig. 6 panels for one task into out_dir; returns files and key numbers."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  runners = trained_runners(task, cfg, theta_fn, inner_steps, seed)
  x_test, y_test = task.test_set(int(max_test))
  chunk = int(cfg.evaluation.test_chunk)
  feats = {
    m: np.nan_to_num(protocols.batched_features(r.features, x_test, chunk)) for m, r in runners.items()
  }
  spectra = {m: pca_spectrum(f) for m, f in feats.items()}
  ranks = {m: effective_rank(s) for m, s in spectra.items()}
  files = {}
  side = image_side(task.input_dim)
  if side is not None:
    grids = {}
    for m, r in runners.items():
      fields = receptive_fields(r.state["layers"][0]["w"], r.state["perm"])[:num_fields]
      grids[m] = tile_fields(fields, side, ncols=min(8, len(fields)))
    files["receptive_fields"] = plots.plot_receptive_fields(
      grids,
      out_dir / "fig6_receptive_fields.png",
      f"{task.name}: first-layer receptive fields after {inner_steps} steps (seed {seed})",
    )
  if task.name == "two_moons":
    files["two_moons"] = plots.plot_two_moons(
      x_test, y_test, {m: pca_project(f, 2) for m, f in feats.items()}, out_dir / "fig6_two_moons.png"
    )
  files["pca_spectrum"] = plots.plot_spectra(
    spectra,
    ranks,
    out_dir / "fig6_pca_spectrum.png",
    f"{task.name}: top-layer feature PCA ({len(y_test)} test examples)",
  )
  return {
    "task": task.name,
    "inner_steps": int(inner_steps),
    "seed": int(seed),
    "files": files,
    "effective_rank": ranks,
    "top_component": {m: float(s[0]) for m, s in spectra.items()},
    "spectrum": {m: s.tolist() for m, s in spectra.items()},
  }
