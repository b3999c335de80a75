"""The evaluation set-up every evaluating command shares: the checked config, the task, the θ, the seeds.

    from meta_unsup_rules.evaluation import evaluation_setup as setup
    s = setup.set_up(cfg, overrides)  # cfg: the config with the command's flags applied
    runner.run_evaluation(s)

`overrides` are the explicit `--config.*` values ({"rule.inner_lr": 0.1, ...}, from
config_flags.get_override_values): an exported θ's own config.json supplies `rule` and `base_model`,
and those overrides re-apply on top (evaluation/learned_rule.py). No flags here: the commands
(scripts.evaluate, sweep, demo; experiments.tools.heldout_curve, rule_geometry, feature_figures) pass
their values in and turn a SetupError into exit status 2 with its message.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from meta_unsup_rules.evaluation import runner
from meta_unsup_rules.util import config_check, jax_setup
from meta_unsup_rules.util.config_check import ConfigError

# The config sections an evaluation reads, and those an exported θ brings with it.
SECTIONS = ("base_model", "rule", "unroll", "compatible", "meta_objective", "evaluation", "baselines")
THETA_SECTIONS = ("base_model", "rule", "compatible")


class SetupError(ValueError):
  """Bad input found before anything runs or is written; the message says what and what is expected."""


def check_config(cfg, sections: Sequence[str] = SECTIONS) -> None:
  """Checks the named sections of `cfg` (default: every section an evaluation reads) with the
  registered checks (util.config_check.SECTION_CHECKS).

  Raises SetupError with util.config_check.ConfigError's message (the field, its value and
  what is allowed)."""
  try:
    config_check.check_sections(cfg, sections)
  except ConfigError as e:
    raise SetupError(str(e)) from e


@dataclasses.dataclass(frozen=True)
class EvaluationSetup(runner.EvaluationRun):
  """What an evaluation runs on (`runner.run_evaluation(setup)`); built by `set_up`. Beside the
  run's fields (task, cfg: checked, an exported θ's rule and base_model applied; methods; inner_steps;
  eval_every; seeds cfg.seed, cfg.seed + 1, ...; theta_fn): the θ argument and the explicit
  --config.* overrides, re-applied to every θ's own config."""

  theta: str = "random"  # the θ argument: an export directory or "random"
  overrides: dict = dataclasses.field(default_factory=dict)

  def resolve(self, theta_arg: str):
    """(theta_fn, cfg) for another θ ('random' or an export) against this set-up's config, its
    sections checked; raises SetupError for a missing, mismatched or invalid export."""
    from meta_unsup_rules import learned_update  # pylint: disable=g-import-not-at-top
    from meta_unsup_rules.evaluation import learned_rule  # pylint: disable=g-import-not-at-top

    try:
      theta_fn, cfg = learned_rule.resolve_theta(theta_arg, self.cfg, self.overrides)
    except learned_update.ExportError as e:
      raise SetupError(str(e)) from e
    check_config(cfg, THETA_SECTIONS)  # the export's own sections
    return theta_fn, cfg


def set_up(cfg, overrides: dict | None = None, theta: str | None = None, readouts: bool = True):
  """The checked config and what it names, as an EvaluationSetup.

  `cfg`: the config with the command's flags (aliases, script defaults) already applied;
  `theta` replaces cfg.evaluation.theta (a command that evaluates several θ resolves the first
  here, or "random", then the others with EvaluationSetup.resolve). `readouts`: the command fits
  readouts, so on your own data every class must be large enough for a support set and an
  episode may not ask for more classes than the task has (False: a command that only draws
  features). Configures JAX. Raises SetupError on bad input:
  a config value outside what is allowed, a missing or mismatched θ export, a task that does not
  load, a support set or an episode larger than the task allows.
  """
  from meta_unsup_rules import learned_update  # pylint: disable=g-import-not-at-top  (imports JAX)
  from meta_unsup_rules.evaluation import (
    config_section as evaluation_settings,  # pylint: disable=g-import-not-at-top
  )
  from meta_unsup_rules.evaluation import learned_rule, protocols  # pylint: disable=g-import-not-at-top
  from meta_unsup_rules.tasks import DataError, own_data  # pylint: disable=g-import-not-at-top

  overrides = dict(overrides or {})
  if theta is not None:
    cfg.evaluation.theta = theta
  check_config(cfg)
  jax_setup.configure_jax()
  ecfg = cfg.evaluation
  try:
    theta_fn, cfg = learned_rule.resolve_theta(ecfg.theta, cfg, overrides)
  except learned_update.ExportError as e:
    raise SetupError(str(e)) from e
  check_config(cfg, THETA_SECTIONS)  # an export's own sections
  ecfg = cfg.evaluation
  try:
    task = evaluation_settings.make_task(ecfg)
    # Built-in tasks knowingly repeat examples of small classes (sampling.draw); on your own
    # data a class too small for the support sets is more likely a mistake.
    per_class = protocols.get(ecfg.protocol).per_class_field
    if readouts and own_data.is_own(ecfg.task) and per_class:
      own_data.check_per_class(task, int(ecfg[per_class]), f"evaluation.{per_class}")
  except (DataError, ValueError, OSError) as e:
    raise SetupError(f"cannot load task {ecfg.task!r}: {e}") from e
  problem = protocols.get(ecfg.protocol).check(task, ecfg) if readouts else None
  if problem:
    raise SetupError(problem)
  return EvaluationSetup(
    cfg=cfg,
    task=task,
    theta=str(ecfg.theta),
    theta_fn=theta_fn,
    methods=list(ecfg.methods),
    seeds=[int(cfg.seed) + i for i in range(int(ecfg.seeds))],
    inner_steps=int(ecfg.inner_steps),
    eval_every=evaluation_settings.eval_every(ecfg),
    overrides=overrides,
  )
