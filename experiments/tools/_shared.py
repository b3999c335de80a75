"""What the meta-gradient diagnostics share: θ under its own rule settings, and the JSON result."""

import pathlib

from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import files, jax_setup, run_record


def theta_with_its_rule(theta_arg: str, cfg):
  """θ of `--theta` (seed 0) with `cfg.rule` set to the export's rule settings; exits 2 on a bad export."""
  from meta_unsup_rules.evaluation import learned_rule
  from meta_unsup_rules.learned_update import ExportError

  jax_setup.configure_jax()
  try:
    theta_fn, theta_cfg = learned_rule.resolve_theta(theta_arg, cfg)
  except ExportError as e:
    cli.fail(str(e))
  cfg.rule = theta_cfg.rule
  return theta_fn(0)


def write_result(out: str | None, result: dict) -> None:
  """Writes `result` with its run record to `out` (if given), then prints it as the last stdout line."""
  if out:
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_json(out, run_record.with_record(result))
  cli.emit_json(result)
