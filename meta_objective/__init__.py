"""Few-shot readouts: the differentiable ridge meta-objective and evaluation readouts."""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")

from meta_unsup_rules.meta_objective.logistic import LogisticRegression, ridge_accuracy
from meta_unsup_rules.meta_objective.ridge import (
  CENTRINGS,
  LOSSES,
  TARGETS,
  center_targets,
  center_targets_per_group,
  meta_objective,
  predict,
  ridge_loss,
  solve_ridge,
)

__all__ = [
  "CENTRINGS",
  "TARGETS",
  "LOSSES",
  "LogisticRegression",
  "center_targets",
  "center_targets_per_group",
  "meta_objective",
  "predict",
  "ridge_accuracy",
  "ridge_loss",
  "solve_ridge",
]
