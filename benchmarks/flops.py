"""FLOP formulas of one inner step of the rule and of one meta-objective evaluation.

A cross-check of XLA's `cost_analysis()` (`benchmarks.xla.flops_of`): counting every matmul
by hand says which part of the rule the FLOPs go to (the h network's convolutions) and
catches an executable that does more or less work than the rule describes.
"""

from __future__ import annotations

from meta_unsup_rules.learned_update import rule


def h_network_flops(rule_cfg, batch: int, layer_units) -> float:
  """FLOPs of the h network's convolutions in one inner step (the rule's dominant term).

  `layer_units`: units of every layer the rule visits, the input pixels included
  (input_dim, hidden widths..., top width). Each conv maps c_in → c_out channels with a
  `kernel_size` kernel at every (unit, example) position.
  """
  k, hs = int(rule_cfg.kernel_size), int(rule_cfg.compute_h_size)
  c0 = rule.NUM_STAT_CHANNELS + 1 + rule.NUM_UNIT_FEATURES + int(rule_cfg.delta_dim)
  per_block = lambda c_in: k * c_in * hs + 2 * k * hs * hs  # batch-axis conv + 2 unit-axis convs
  macs = per_block(c0) + int(rule_cfg.compute_h_layers) * per_block(hs)
  return 2.0 * batch * float(sum(layer_units)) * macs


def rule_step_flops(rule_cfg, batch: int, layer_units) -> dict:
  """Matmul FLOPs of one inner step (`rule.inner_step`), by part, and their total.

  Elementwise work (normalisations, activations) is left out: XLA counts it too, so
  XLA / formula is a little above 1 (~1.1 at the local shapes, ~1.3 at tiny ones).
  """
  r = rule_cfg
  u = [int(x) for x in layer_units]
  pairs = list(zip(u[:-1], u[1:]))  # (n_in, n_out) of every weight matrix
  b, top = int(batch), u[-1]
  hs, c, dd = int(r.compute_h_size), int(r.num_grad_channels), int(r.delta_dim)
  td, k = int(r.top_delta_size), int(r.kernel_size)
  sides = 1 if r.identical_updates else 2  # V gets W's update, or its own readouts
  macs = {
    "base_forward": b * sum(n * m for n, m in pairs),
    # conv_in (1 -> td), 2 unit-mixing convs (n_top -> n_top over td rows), layers, out.
    "top_delta": top
    * b
    * (int(r.top_delta_kernel) * td + int(r.top_delta_layers) * k * td * td + k * td * dd)
    + 2 * td * b * k * top * top,
    "compute_h": h_network_flops(r, b, u) / 2,
    # to_delta (h -> delta) and the top-down V @ delta of every layer but the input.
    "delta": sum(m * b * hs * dd + n * m * b * dd for n, m in pairs),
    "readouts": sides * sum(u) * b * hs * len(rule.READOUT_NAMES) * c + sum(u[1:]) * b * hs,
    # per W [n, m]: corr (B m^2), w_hat @ corr, hebb, 3 low-rank terms, 5 lateral
    # products (3 upper m x m, 2 lower n x n) and their application to w, the merge.
    "weight_change": sides
    * sum(
      b * m * m
      + n * m * m
      + b * n * m
      + 3 * n * m * b * c
      + (3 * m * m + 2 * n * n) * b * c
      + 3 * n * m * m
      + 2 * n * n * m
      + len(rule.WEIGHT_TERMS) * n * m
      for n, m in pairs
    ),
  }
  out = {name: 2.0 * v for name, v in macs.items()}
  out["total"] = sum(out.values())
  return out


def evaluation_flops(mo_cfg, layer_units, num_classes: int, num_targets: int) -> dict:
  """Matmul FLOPs of the meta-objective at one state: features of the n (a, b) pairs, ridge."""
  u = [int(x) for x in layer_units]
  n, per_half = int(mo_cfg.num_evaluations), int(num_classes) * int(mo_cfg.samples_per_class)
  f, t = u[-1] + 1, int(num_targets)  # features + the constant column
  out = {
    "features": 2.0 * n * 2 * per_half * sum(a * b for a, b in zip(u[:-1], u[1:])),
    # gram, A^T y, predictions, Cholesky (f^3 / 3) and its two triangular solves.
    "ridge": 2.0 * n * (per_half * f * f + 2 * per_half * f * t + f**3 / 3 + 2 * f * f * t),
  }
  out["total"] = out["features"] + out["ridge"]
  return out


def meta_grad_passes(rule_cfg) -> int:
  """Forward-equivalent passes per meta-gradient step: fwd + 2 bwd (+ 1 recomputed fwd)."""
  return 4 if rule_cfg.checkpoint_unroll else 3
