"""The flags and set-up an evaluating command shares (scripts.evaluate, sweep, demo; the studies'
heldout_curve, rule_geometry, feature_figures): --config (configs/local.py by default), the alias
flags, --out_dir, --data_dir, and evaluation/evaluation_setup.py's checked set-up with bad input exiting 2."""

from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags

from meta_unsup_rules.evaluation import evaluation_setup
from meta_unsup_rules.scripts import cli, config_args

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]  # the checkout (installed: the package folder)


def define_evaluation_flags(
  config_help: str, out_help: str | None = None, aliases=config_args.EVALUATION_ALIASES
):
  """The flags of an evaluating command: --config (default configs/local.py), the alias flags
  `aliases`, --data_dir and, given `out_help`, --out_dir. Returns (the config holder, the --out_dir
  holder)."""
  config = config_args.define_config_file("config", str(CHECKOUT / "configs" / "local.py"), config_help)
  config_args.define_aliases(aliases)
  cli.define_data_dir_flag()
  out_dir = None
  if out_help is not None:
    out_dir = flags.DEFINE_string("out_dir", None, out_help)
    cli.list_under_help("out_dir")
  return config, out_dir


def set_up_evaluation(cfg, theta: str | None = None, readouts: bool = True):
  """evaluation_setup.set_up on `cfg` (the --config value with the aliases applied) and this
  command's explicit --config overrides; bad input exits 2 with its message."""
  overrides = config_flags.get_override_values(flags.FLAGS["config"])
  try:
    return evaluation_setup.set_up(cfg, overrides, theta=theta, readouts=readouts)
  except evaluation_setup.SetupError as e:
    cli.fail(str(e))


def resolve_theta(setup, theta_arg: str):
  """(theta_fn, cfg) of another θ against an evaluation set-up (EvaluationSetup.resolve); a missing,
  mismatched or invalid export exits 2 with its message."""
  try:
    return setup.resolve(theta_arg)
  except evaluation_setup.SetupError as e:
    cli.fail(str(e))
