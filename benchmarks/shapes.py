"""The shapes a config is benchmarked at, and inputs of those shapes.

Every part of the benchmark (meta-gradients, the scaling table, the h precision study)
runs the rule on synthetic batches at explicit shapes, so its figures do not depend on
which task a sampler happened to draw:

* `tiny_mnist`: 196 inputs and the config's evaluated base model (the paper's shapes);
* `meta_train`: the largest task of the config's own meta-training distribution
  (`task.image_size`, `task.depth_max` hidden layers of `task.width_max`, its inner batch).

Targets have the task's regression columns.
"""

from __future__ import annotations

import importlib

import jax
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.learned_update import rule, synthetic
from meta_unsup_rules.tasks import image_ops

TINY_MNIST_INPUT_DIM = 196  # 14 x 14


def config_module(module: str) -> str:
  """The importable name of a config module named like "configs.local" (meta_unsup_rules.configs.local)."""
  return module if module.startswith("meta_unsup_rules.") else f"meta_unsup_rules.{module}"


def load_config(module: str):
  """`get_config()` of a config module named like "configs.local"."""
  return importlib.import_module(config_module(module)).get_config()


def bench_shapes(cfg, kind: str) -> dict:
  """The shapes a config is benchmarked at (see the module docstring)."""
  t = cfg.task
  if kind == "tiny_mnist":
    input_dim, hidden = TINY_MNIST_INPUT_DIM, tuple(int(w) for w in cfg.base_model.hidden_widths)
    source = "Tiny MNIST (14x14) and the evaluated base model of the config"
  elif kind == "meta_train":
    channels = 1 if t.greyscale else 3
    input_dim = int(t.image_size) ** 2 * channels
    hidden = (int(t.width_max),) * int(t.depth_max)
    source = "largest task of the config's meta-training distribution (depth_max x width_max)"
  else:
    raise ValueError(f"unknown shapes {kind!r}; expected 'tiny_mnist' or 'meta_train'")
  return {
    "input_dim": input_dim,
    "hidden_widths": hidden,
    "batch": int(cfg.unroll.inner_batch_size),
    "num_classes": int(max(t.num_classes_choices)),
    "num_regression": image_ops.NUM_AUGMENT_TARGETS if t.augment else 0,
    "source": source,
  }


def shaped_config(cfg, shapes: dict):
  """A copy of cfg whose base model and inner batch have `shapes` (apply_rule reads both)."""
  c = cfg.copy_and_resolve_references()
  c.base_model.hidden_widths = tuple(shapes["hidden_widths"])
  c.unroll.inner_batch_size = int(shapes["batch"])
  return c


def inputs(cfg, shapes: dict, k: int, seed: int = 0):
  """(θ, base model state, k steps of synthetic batches) on the device, for `cfg` at `shapes`."""
  theta = rule.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  state = base_models.init(
    jax.random.PRNGKey(seed + 1),
    shapes["input_dim"],
    base_models.layer_widths(cfg.base_model),
    cfg.base_model,
  )
  batches = synthetic.synthetic_batches(
    cfg, np.random.default_rng(seed), k, shapes["input_dim"], shapes["num_classes"], shapes["num_regression"]
  )
  return jax.device_put((theta, state, batches))


def describe(cfg, shapes: dict) -> dict:
  """The shapes and rule settings a figure was measured at, for the JSON."""
  return {
    "input_dim": shapes["input_dim"],
    "layer_widths": list(base_models.layer_widths(cfg.base_model)),
    "inner_batch_size": int(cfg.unroll.inner_batch_size),
    "source": shapes["source"],
    "compute_h_size": int(cfg.rule.compute_h_size),
    "top_delta_size": int(cfg.rule.top_delta_size),
    "num_evaluations": int(cfg.meta_objective.num_evaluations),
    "samples_per_class": int(cfg.meta_objective.samples_per_class),
    "num_classes": shapes["num_classes"],
    "num_regression_targets": shapes["num_regression"],
    "checkpoint_unroll": bool(cfg.rule.checkpoint_unroll),
    "h_dtype": str(cfg.rule.h_dtype),
  }
