"""The readout on the unprocessed inputs: the floor a useful learned representation must clear.

No network and no training: `features(x)` is `x` itself (flattened, float32), so the readouts
fit the raw pixels (or bag-of-words). In 10-shot ridge this can beat a 32-unit representation;
a learned rule is only useful where it scores above it.
"""

from __future__ import annotations

import numpy as np

from meta_unsup_rules.base_models.baselines.mlp_baseline import BaselineInputs


class RawInput:
  """Features = the inputs; `advance` ignores the unlabelled stream."""

  name = "raw_input"

  def __init__(self, input_dim: int):
    self.input_dim = int(input_dim)

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "RawInput":
    return cls(inputs.input_dim)

  def advance(self, unlabelled) -> None:
    del unlabelled  # nothing is learned from the stream

  def features(self, x) -> np.ndarray:
    return np.asarray(x, np.float32).reshape(-1, self.input_dim)

  def diagnostics(self) -> dict:
    return {}
