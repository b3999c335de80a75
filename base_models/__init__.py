"""Base models that the learned rule trains."""

from meta_unsup_rules.base_models.mlp import (
  ACTIVATIONS,
  activation_fn,
  batch_norm,
  features,
  forward,
  init,
  layer_widths,
)

__all__ = ["ACTIVATIONS", "activation_fn", "batch_norm", "features", "forward", "init", "layer_widths"]
