"""The learned rule as an evaluated method: θ from `--theta`, and the network it trains.

`LearnedRule` has the baselines' interface (base_models/baselines/mlp_baseline.py), so the
runner drives it in lockstep with them on the same unlabelled stream.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from meta_unsup_rules import learned_update
from meta_unsup_rules.base_models.baselines import MLPBaseline
from meta_unsup_rules.util.batched_calls import Call


class LearnedRule(MLPBaseline):
  """The base model trained by applying θ's UnsupervisedUpdate on the unlabelled stream."""

  name = "learned"

  def __init__(self, theta, state: dict, cfg):
    super().__init__(state, cfg.base_model)
    self.theta = theta
    self._apply = learned_update.make_unroll_fns(cfg).apply_rule

  def advance_call(self, unlabelled) -> Call | None:
    if len(unlabelled) == 0:
      return None
    return Call(self._apply, (self.theta, self.state, jnp.asarray(unlabelled, jnp.float32)))

  def absorb(self, output) -> None:
    self.state = output


def resolve_theta(theta_arg: str, cfg, overrides: dict | None = None):
  """(theta_fn, cfg) for `--theta`: 'random' or an export directory.

  'random': θ = init_theta(PRNGKey(seed), cfg.rule) per seed. An export: its config.json
  supplies `rule` and `base_model` (fields it lacks keep `cfg`'s), then the flat `overrides`
  ({"base_model.x": v, ...}, e.g. from config_flags.get_override_values) of those two
  sections are re-applied.
  Raises learned_update.ExportError for a missing or mismatched export.
  """
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  if theta_arg == "random":
    rule_cfg = cfg.rule
    return (lambda seed: learned_update.init_theta(jax.random.PRNGKey(seed), rule_cfg)), cfg
  theta, theta_cfg, _ = learned_update.load_theta(theta_arg)
  for section in ("rule", "base_model"):
    if section in theta_cfg:
      # The export's values win; fields it predates keep the current config's value (e.g.
      # rule.step_mode, added after the first exports, stays "released" unless overridden).
      merged = cfg[section].to_dict()
      merged.update(theta_cfg[section].to_dict())
      cfg[section] = ml_collections.ConfigDict(merged)
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    if parents and parents[0] in ("rule", "base_model"):
      node = cfg
      for p in parents:
        node = node[p]
      node[leaf] = value
  return (lambda seed: theta), cfg
