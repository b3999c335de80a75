"""How a weight change moves each receptive field: radial and tangential parts, angular steps.

A receptive field is one column W[:, j] of a weight matrix [n_in, n_out]. Every layer of
the base model is followed by batch norm, so the length of a receptive field changes
nothing but the size of later angular steps: only the tangential part of a change (the
part perpendicular to the column) changes what the unit computes.

Two ways to apply the rule's change ΔP (config `rule.step_mode`):

* ``"released"`` [C]: P ← (1 − lr)·P − lr·ΔP. The rule's change is mostly radial (it grows
  the columns), so the angular step is implicit in the radial/tangential split of ΔP and
  in the columns' lengths, and meta-training can grow it freely.
* ``"tangential"`` [ours]: the radial part of −ΔW (and −ΔV) is dropped, the column turns
  by the tangential part, scaled so that its angle is at most ``rule.angular_step``
  radians, and is renormalised to its length before the step (lengths never change). The
  rule still chooses the direction and, per column, a fraction of the bounded step: the
  merged change has per-column RMS ≤ 1 (released normalisation with ε = 1), so
  ‖ΔP_tan[:, j]‖ / √n_in ∈ [0, 1). Biases take the released step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

STEP_MODES = ("released", "tangential")
_EPS = 1e-12  # inside every square root of a squared length


def column_norms(w: jax.Array) -> jax.Array:
  """‖W[:, j]‖ for every column, [1, n_out]."""
  return jnp.sqrt(jnp.sum(jnp.square(w), axis=0, keepdims=True) + _EPS)


def split_change(w: jax.Array, change: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(radial, tangential) parts of `change` with respect to each column of `w`."""
  unit = w / column_norms(w)
  radial = unit * jnp.sum(unit * change, axis=0, keepdims=True)
  return radial, change - radial


def tangential_step(w: jax.Array, change: jax.Array, angular_step: float) -> jax.Array:
  """W turned by −change's tangential part (angle ≤ angular_step per column), lengths kept."""
  norms = column_norms(w)
  _, tangential = split_change(w, change)
  fraction = tangential / jnp.sqrt(float(w.shape[0]))
  moved = w - angular_step * norms * fraction
  return moved * (norms / column_norms(moved))


def apply_tangential(state: dict, changes: list[dict], angular_step: float, lr: float) -> dict:
  """The ``"tangential"`` step for W and V; b ← (1 − lr)·b − lr·Δb as released."""
  layers = tuple(
    {
      "w": tangential_step(layer["w"], change["w"], angular_step),
      "v": tangential_step(layer["v"], change["v"], angular_step),
      "b": (1.0 - lr) * layer["b"] - lr * change["b"],
    }
    for layer, change in zip(state["layers"], changes)
  )
  return {"layers": layers, "perm": state["perm"]}


def step_stats(w_old: jax.Array, w_new: jax.Array, change: jax.Array) -> dict[str, jax.Array]:
  """Geometry of one step of one matrix: what the rule asked for and what the columns did.

  tangential_share: Σ‖ΔW_tan‖² / Σ‖ΔW‖² of the rule's change (before any step);
  radial_growth: its radial part against the columns (mean of −ΔW·ŵ, > 0 grows them);
  angle_mean / angle_max: the applied angular step per column, in radians;
  norm_ratio: mean ‖W_new[:, j]‖ / ‖W_old[:, j]‖.
  """
  _, tangential = split_change(w_old, change)
  total = jnp.sum(jnp.square(change)) + _EPS
  old_norms, new_norms = column_norms(w_old), column_norms(w_new)
  # atan2(perpendicular, parallel) of the new column against the old one: exact for the
  # tiny angles of one inner step, where 1 − cos² rounds to zero in float32.
  along, across = split_change(w_old, w_new)
  unit = w_old / old_norms
  parallel = jnp.sum(unit * along, axis=0)
  perpendicular = jnp.sqrt(jnp.sum(jnp.square(across), axis=0) + _EPS)
  angles = jnp.arctan2(perpendicular, parallel)
  return {
    "tangential_share": jnp.sum(jnp.square(tangential)) / total,
    "radial_growth": jnp.mean(-jnp.sum(unit * change, axis=0)),
    "angle_mean": jnp.mean(angles),
    "angle_max": jnp.max(angles),
    "norm_ratio": jnp.mean(new_norms / old_norms),
    "norm_mean": jnp.mean(old_norms),
  }
