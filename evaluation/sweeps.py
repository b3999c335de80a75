"""Architecture / activation / permutation sweeps of the base model (docs/method.md §7, the paper's Fig. 5).

Each sweep sets one field of `cfg.base_model` per value; the full evaluation then runs
once per value (scripts.sweep).
"""

from __future__ import annotations

import ml_collections

from meta_unsup_rules import base_models

SWEEPS = {
  # name: (config field under base_model, default values, parser of a --values item)
  "width": ("hidden_widths", ("32", "128", "512"), lambda v: (int(v),) * 4),
  "depth": ("hidden_widths", ("1", "2", "4", "8"), lambda v: (128,) * int(v)),
  "activation": ("activation", ("relu", "leaky_relu", "swish", "tanh", "sigmoid", "step"), str),
  "permutation": ("permute_inputs", ("true", "false"), lambda v: {"true": True, "false": False}[v.lower()]),
}


def sweep_config(cfg, sweep: str, value: str) -> ml_collections.ConfigDict:
  """cfg with base_model.<field> set for one sweep value (e.g. width "512" → 4×512 hidden)."""
  if sweep not in SWEEPS:
    raise ValueError(f"unknown sweep {sweep!r}; expected one of {tuple(SWEEPS)}")
  field, _, parse = SWEEPS[sweep]
  try:
    parsed = parse(value)
  except (KeyError, ValueError) as e:
    raise ValueError(f"bad value {value!r} for sweep {sweep!r}") from e
  if sweep == "activation":
    base_models.activation_fn(parsed)  # raises for an unknown name
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  cfg.base_model[field] = parsed
  return cfg
