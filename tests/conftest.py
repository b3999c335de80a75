"""Shared fixtures: one tiny base-model/rule shape so the unroll compiles once per session."""
import os

import jax
import numpy as np
import pytest

from learned_update import export

# A persistent compilation cache makes re-runs of the suite much faster; CI starts cold.
export.configure_jax(os.environ.get("META_UNSUP_JAX_CACHE"))

TINY_INPUT_DIM = 64
TINY_CLASSES = 3
TINY_REGRESSION = 1
TINY_K = 2


def tiny_batches(cfg, rng, k=TINY_K, input_dim=TINY_INPUT_DIM, num_classes=TINY_CLASSES,
                 num_regression=TINY_REGRESSION, fill=None):
  """Random unroll batches in the layout of learned_update.unroll (class-balanced halves)."""
  n = cfg.meta_objective.num_evaluations
  spc = cfg.meta_objective.samples_per_class
  bsz = cfg.unroll.inner_batch_size
  half = np.repeat(np.arange(num_classes), spc)
  labels = np.broadcast_to(np.concatenate([half, half]), (k, n, 2 * half.size)).astype(np.int32)
  onehot = np.eye(num_classes, dtype=np.float32)[labels]
  regression = rng.uniform(-1, 1, labels.shape + (num_regression,)).astype(np.float32)
  shape_x = (k, n, 2 * half.size, input_dim)
  if fill is None:
    unlabelled = rng.random((k, bsz, input_dim), dtype=np.float32)
    x = rng.random(shape_x, dtype=np.float32)
  else:
    unlabelled = np.full((k, bsz, input_dim), fill, np.float32)
    x = np.full(shape_x, fill, np.float32)
  return {"unlabelled": unlabelled, "x": x,
          "targets": np.concatenate([onehot, regression], axis=-1), "labels": labels}


@pytest.fixture(scope="session")
def tiny_cfg():
  from configs import tiny
  return tiny.get_config()


@pytest.fixture(scope="session")
def tiny_theta(tiny_cfg):
  from learned_update import rule
  return rule.init_theta(jax.random.PRNGKey(0), tiny_cfg.rule)


@pytest.fixture(scope="session")
def tiny_state(tiny_cfg):
  import base_models
  return base_models.init(jax.random.PRNGKey(1), TINY_INPUT_DIM,
                          base_models.layer_widths(tiny_cfg.base_model), tiny_cfg.base_model)
