r"""Baseline representation learners on the base-model architecture (docs/method.md §6), by name.

=================  ==========================================================================
random_init        the untouched base model (no updates)                  `mlp_baseline.py`
pca                streaming PCA of the unlabelled examples seen so far   `pca.py`
vae                VAE whose encoder is the base MLP                      `vae.py`
supervised         base MLP + softmax head on the labelled support set    `supervised.py`
contrastive        SimCLR (NT-Xent on two augmented views)                `contrastive.py`
hebbian            Oja's subspace rule on every layer                     `hebbian.py`
protonet           prototypical network on all train labels (reference)   `protonet.py`
protonet_permuted  that protonet scored on permuted inputs                `protonet.py`
raw_input          the readout on the unprocessed inputs (no network)     `raw_input.py`
=================  ==========================================================================

Each baseline starts from the evaluator's shared initial base-model state and is driven
through `advance` / `features` / `diagnostics` (`mlp_baseline.py`). `REGISTRY` maps each
name to its class; a new baseline is one module plus one entry there. Its PRNG key comes
from its `key_name` (evaluation/runner.py), so adding one changes no other's numbers.
Settings live in `cfg.baselines` (values: configs/paper.py; checks: `settings.validate_config`).
"""

from __future__ import annotations

import numpy as np

from meta_unsup_rules.base_models.baselines.contrastive import Contrastive
from meta_unsup_rules.base_models.baselines.hebbian import Hebbian
from meta_unsup_rules.base_models.baselines.mlp_baseline import BaselineInputs, MLPBaseline, RandomInit
from meta_unsup_rules.base_models.baselines.pca import PCA
from meta_unsup_rules.base_models.baselines.protonet import PermutedProtoNet, ProtoNet
from meta_unsup_rules.base_models.baselines.raw_input import RawInput
from meta_unsup_rules.base_models.baselines.settings import validate_config
from meta_unsup_rules.base_models.baselines.supervised import Supervised
from meta_unsup_rules.base_models.baselines.vae import VAE

# The order is the one of result tables and plots.
REGISTRY = {
  cls.name: cls
  for cls in (RandomInit, RawInput, PCA, VAE, Supervised, Contrastive, Hebbian, ProtoNet, PermutedProtoNet)
}
BASELINES = tuple(REGISTRY)


def key_name(name: str) -> str:
  """The name baseline `name`'s PRNG key is derived from: its own, or the one it trains like."""
  return getattr(REGISTRY[name], "key_name", name)


def make_baseline(
  name: str,
  key,
  state: dict,
  input_dim: int,
  base_cfg,
  bcfg,
  *,
  data_sample: np.ndarray,
  support=None,
  num_classes: int | None = None,
  labelled=None,
):
  """Builds baseline `name` from the shared initial base-model `state`.

  `bcfg` is `cfg.baselines`; `support` (x, y) the few-shot support set (supervised);
  `labelled` (x, y) the whole labelled train split (protonet, protonet_permuted).
  """
  if name not in REGISTRY:
    raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")
  return REGISTRY[name].build(
    BaselineInputs(
      key=key,
      state=state,
      input_dim=input_dim,
      base_cfg=base_cfg,
      settings=bcfg,
      data_sample=data_sample,
      support=support,
      num_classes=num_classes,
      labelled=labelled,
    )
  )


__all__ = [
  "BASELINES",
  "REGISTRY",
  "BaselineInputs",
  "Contrastive",
  "Hebbian",
  "MLPBaseline",
  "PCA",
  "PermutedProtoNet",
  "ProtoNet",
  "RandomInit",
  "Supervised",
  "VAE",
  "key_name",
  "make_baseline",
  "validate_config",
]
