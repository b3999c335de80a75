"""Where the learned rule's effect lives: the geometry of its weight changes along an inner loop.

For one θ, one task and one seed (the evaluated base model and unlabelled stream of
evaluation/seeds.py), the rule runs `inner_steps` steps; at every step and for every
layer's W it records learned_update.step_geometry.step_stats: the tangential share of the
rule's ΔW, its radial growth, the applied angular step per receptive field (mean, max)
and the column lengths. With batch norm after every layer, only the angular steps change
the features (step_geometry's docstring).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.evaluation import seeds as seed_setup
from meta_unsup_rules.learned_update import export, rule, step_geometry
from meta_unsup_rules.learned_update.rule import WEIGHT_TERMS

STAT_NAMES = ("tangential_share", "radial_growth", "angle_mean", "angle_max", "norm_ratio", "norm_mean")


def mixing_weights(theta) -> dict[str, float]:
  """The learned weights of the 12 ΔW terms (forward readouts) and the merge bias."""
  merge = theta["forward"]["merge"]
  w = np.asarray(merge["w"]).reshape(-1)
  out = {name: float(v) for name, v in zip(WEIGHT_TERMS, w)}
  out["bias"] = float(np.asarray(merge["b"]).reshape(-1)[0])
  return out


@functools.lru_cache(maxsize=None)
def _geometry_scan(rule_json: str, base_json: str):
  """One jitted scan per (rule, base model) config: θ is an argument, so every θ reuses it."""
  rule_cfg, base_cfg = export.config_from_json(rule_json), export.config_from_json(base_json)

  @jax.jit
  def run(theta, state, stream):
    def body(state, x):
      changes = rule.compute_updates(theta, state, x, rule_cfg, base_cfg)
      new_state = rule.apply_changes(state, changes, rule_cfg)
      stats = [
        step_geometry.step_stats(old["w"], new["w"], ch["w"])
        for old, new, ch in zip(state["layers"], new_state["layers"], changes)
      ]
      return new_state, stats

    return jax.lax.scan(body, state, stream)[1]

  return run


def trace(theta, cfg, task, seed: int, inner_steps: int) -> dict:
  """{"layers": [{stat: [inner_steps] list}], "mixing": {...}} for one θ and seed."""
  keys = seed_setup.seed_keys(seed)
  base_cfg = cfg.base_model
  state = base_models.init(keys["base"], task.input_dim, base_models.layer_widths(base_cfg), base_cfg)
  batch = int(cfg.unroll.inner_batch_size)
  stream = task.unlabelled_batches(np.random.default_rng([seed, 0]), inner_steps, batch)
  run = _geometry_scan(cfg.rule.to_json(), base_cfg.to_json())
  stats = run(theta, state, jnp.asarray(stream, jnp.float32))
  layers = [{k: np.asarray(v[k], np.float64).tolist() for k in STAT_NAMES} for v in stats]
  return {"seed": seed, "inner_steps": inner_steps, "layers": layers, "mixing": mixing_weights(theta)}


def summarise(trace_result: dict, steps=(0, 99, 999)) -> list[dict]:
  """Per layer: each stat at the given inner steps (those inside the trace), and the summed
  angular steps over the whole trace (an upper bound on how far a receptive field turned)."""
  rows = []
  for i, layer in enumerate(trace_result["layers"], start=1):
    n = len(layer["angle_mean"])
    row = {"layer": i, **{f"{k}@{s + 1}": layer[k][s] for k in STAT_NAMES for s in steps if s < n}}
    row["summed_angle"] = float(np.sum(layer["angle_mean"]))
    rows.append(row)
  return rows
