"""Helpers shared by the worker and estimator tests (not a test module)."""

import numpy as np

from meta_unsup_rules.distributed import checkpoint


def one_shape_cfg(tiny_cfg, estimator: str, **unroll_overrides):
  """tiny_cfg with one base-model shape (one compile), the given estimator and unroll settings."""
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.task.update(dict(width_min=16, width_max=16, width_grid=0))
  cfg.unroll.estimator = estimator
  cfg.unroll.update(unroll_overrides)
  return cfg


def assert_trees_equal(a, b) -> None:
  """The two pytrees have the same leaf paths and bit-identical leaves."""
  fa, fb = checkpoint.flatten(a), checkpoint.flatten(b)
  assert sorted(fa) == sorted(fb)
  for name in fa:
    np.testing.assert_array_equal(fa[name], fb[name], err_msg=name)
