"""θ, the learned UnsupervisedUpdate, and truncated unrolls with meta-gradients."""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")

from meta_unsup_rules.learned_update.export import ExportError, load_theta, save_theta
from meta_unsup_rules.learned_update.rule import (
  apply_updates,
  compute_updates,
  init_theta,
  inner_step,
  param_count,
  theta_param_count_formula,
)
from meta_unsup_rules.learned_update.unroll import UnrollFns, make_unroll_fns

__all__ = [
  "ExportError",
  "UnrollFns",
  "apply_updates",
  "compute_updates",
  "init_theta",
  "inner_step",
  "load_theta",
  "make_unroll_fns",
  "param_count",
  "save_theta",
  "theta_param_count_formula",
]
