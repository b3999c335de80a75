"""Shared fixtures: a temporary data cache, and one tiny shape so the unroll compiles once."""

import gc
import os
import pathlib

import jax
import pytest

from meta_unsup_rules.learned_update import synthetic
from meta_unsup_rules.util import jax_setup

# A persistent compilation cache makes re-runs of the suite much faster; CI starts cold.
jax_setup.configure_jax(os.environ.get("META_UNSUP_JAX_CACHE"))

TINY_INPUT_DIM = 64
TINY_CLASSES = 3
TINY_REGRESSION = 1
TINY_K = 2


def tiny_batches(
  cfg,
  rng,
  k=TINY_K,
  input_dim=TINY_INPUT_DIM,
  num_classes=TINY_CLASSES,
  num_regression=TINY_REGRESSION,
  fill=None,
):
  return synthetic.synthetic_batches(cfg, rng, k, input_dim, num_classes, num_regression, fill)


@pytest.fixture(scope="session", autouse=True)
def data_cache_dir(tmp_path_factory):
  """One preprocessed-data cache for the session; META_UNSUP_TEST_CACHE_DIR keeps one across runs."""
  from meta_unsup_rules.tasks import data_dir as dd

  path = os.environ.get("META_UNSUP_TEST_CACHE_DIR") or str(
    tmp_path_factory.getbasetemp() / "meta_unsup_cache"
  )
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv(dd.CACHE_DIR_ENV, path)
    yield pathlib.Path(path)


@pytest.fixture(scope="module", autouse=True)
def release_compiled_code():
  """The suite runs in one process: without this, every executable compiled and every array kept
  alive by a jit cache stays to the end (several GiB over the suite, enough to abort a CI machine's
  process). Each test module starts with empty caches; its own repeated shapes still compile once."""
  yield
  jax.clear_caches()
  gc.collect()


@pytest.fixture(scope="session")
def tiny_cfg():
  from meta_unsup_rules.configs import tiny

  return tiny.get_config()


@pytest.fixture(scope="session")
def tiny_theta(tiny_cfg):
  from meta_unsup_rules.learned_update import rule

  return rule.init_theta(jax.random.PRNGKey(0), tiny_cfg.rule)


@pytest.fixture(scope="session")
def tiny_state(tiny_cfg):
  from meta_unsup_rules import base_models

  return base_models.init(
    jax.random.PRNGKey(1), TINY_INPUT_DIM, base_models.layer_widths(tiny_cfg.base_model), tiny_cfg.base_model
  )
