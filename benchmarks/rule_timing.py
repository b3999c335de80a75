"""Wall-clock seconds of the rule and of a meta-gradient, jitted as the worker runs them.

A quick figure for `experiments.tools.inspect_rule` (compile time included in the first call): the
full benchmark (`benchmarks.run`) times ahead-of-time compiled executables instead.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from meta_unsup_rules import base_models
from meta_unsup_rules.learned_update import rule, synthetic, unroll


def _timed(fn, *args, repeats: int = 2, **kwargs):
  """(seconds of the first call incl. compilation, best seconds of `repeats` later calls, output)."""
  t = time.perf_counter()
  out = jax.block_until_ready(fn(*args, **kwargs))
  first = time.perf_counter() - t
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    best = min(best, time.perf_counter() - t)
  return first, best, out


def measure_rule(
  cfg, input_dim: int, k: int = 5, num_classes: int = 10, seed: int = 0, repeats: int = 2
) -> dict:
  """Seconds per inner step and per meta-gradient of a k-step unroll at `cfg`'s shapes."""
  theta = rule.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  state = base_models.init(
    jax.random.PRNGKey(seed + 1), input_dim, base_models.layer_widths(cfg.base_model), cfg.base_model
  )
  batches = synthetic.synthetic_batches(cfg, np.random.default_rng(seed), k, input_dim, num_classes)
  fns = unroll.make_unroll_fns(cfg)
  rule_first, rule_best, _ = _timed(fns.apply_rule, theta, state, batches["unlabelled"], repeats=repeats)
  grad_first, grad_best, (loss, _, _, grads) = _timed(
    fns.meta_gradient, theta, state, batches, num_classes=num_classes, repeats=repeats
  )
  leaves = jax.tree_util.tree_leaves(grads)
  return {
    "k": k,
    "sec_per_inner_step": rule_best / k,
    "sec_per_meta_grad": grad_best,
    "compile_sec_rule": max(rule_first - rule_best, 0.0),
    "compile_sec_meta_grad": max(grad_first - grad_best, 0.0),
    "meta_loss": float(loss),
    "meta_grad_finite": bool(all(np.all(np.isfinite(np.asarray(g))) for g in leaves)),
    "meta_grad_norm": float(np.sqrt(sum(float(np.sum(np.square(g))) for g in leaves))),
  }
