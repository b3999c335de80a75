"""How the time of one inner step grows with the inner batch, the hidden width and the input size.

Seconds per inner step of `apply_rule` around a config's shapes with one axis doubled
at a time (the input size goes to 784, MNIST's 28x28), set against the growth the FLOP
formula predicts: where they part, the rule is bound by something other than FLOPs.
"""

from __future__ import annotations

import time

from meta_unsup_rules.benchmarks import flops, xla
from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.learned_update import unroll


def scaling_axes(base: dict, quick: bool = False) -> dict:
  """Values of each axis: the base point and one more (quick: one extra shape in all).

  One more value per axis, not two: each shape is a compile of apply_rule (~20 CPU-s),
  and two points per axis already give the exponent of time against that axis.
  """
  if quick:
    return {
      "batch": (base["batch"] // 2, base["batch"]),
      "width": (base["width"],),
      "input_dim": (base["input_dim"],),
    }
  return {
    "batch": (base["batch"], 2 * base["batch"]),
    "width": (base["width"], 2 * base["width"]),
    # 28x28 (MNIST) against the base (16x16 greyscale for local).
    "input_dim": tuple(
      sorted({base["input_dim"], 784 if base["input_dim"] < 784 else 2 * base["input_dim"]})
    ),
  }


def scaling_table(
  base_cfg,
  base_shapes: dict,
  k: int = 5,
  quick: bool = False,
  known: dict | None = None,
  compile_threads: int = 2,
  compiler_options=None,
  log=print,
) -> dict:
  """Seconds per inner step (apply_rule, k-step scan) varying batch, width, input size.

  One axis varies at a time around `base_shapes` (depth and every other setting fixed).
  `known`: {(batch, width, input_dim): {"sec_per_inner_step", "xla_flops"}} already measured
  (the base point is the scaled config's own apply_rule): not compiled again.
  """
  depth = len(base_shapes["hidden_widths"])
  base = {
    "batch": base_shapes["batch"],
    "width": base_shapes["hidden_widths"][0],
    "input_dim": base_shapes["input_dim"],
  }
  axes = scaling_axes(base, quick)
  known = dict(known or {})
  points = {}
  for axis, values in axes.items():
    for v in values:
      p = dict(base, **{axis: v})
      points[(p["batch"], p["width"], p["input_dim"])] = p
  jobs, todo = [], []
  for key in points:
    if key in known:
      continue
    batch, width, input_dim = key
    shapes = dict(base_shapes, batch=batch, hidden_widths=(width,) * depth, input_dim=input_dim)
    cfg = shapes_lib.shaped_config(base_cfg, shapes)
    theta, state, batches = shapes_lib.inputs(cfg, shapes, k)
    jobs.append(
      (
        xla.lower(unroll.make_unroll_fns(cfg).apply_rule, theta, state, batches["unlabelled"])[0],
        compiler_options,
      )
    )
    todo.append((key, (theta, state, batches["unlabelled"])))
  t = time.perf_counter()
  compiled = xla.compile_many(jobs, compile_threads)
  log(
    f"  compiled {len(jobs)} shapes in {time.perf_counter() - t:.0f} s "
    f"({len(known)} reused from the config's own measurement)"
  )
  rows = {key: dict(v) for key, v in known.items() if key in points}
  for (key, args), (fn, _, _) in zip(todo, compiled):
    rows[key] = {
      "sec_per_inner_step": xla.time_call(fn, args, min_calls=2, max_calls=3, budget_sec=5.0) / k,
      "xla_flops": xla.flops_of(fn),
    }
  for (batch, width, input_dim), r in rows.items():
    units = (input_dim,) + (width,) * depth + (int(base_cfg.base_model.top_width),)
    r.update(
      batch=batch,
      width=width,
      input_dim=input_dim,
      formula_flops=flops.rule_step_flops(base_cfg.rule, batch, units)["total"],
    )
  ref = rows[(base["batch"], base["width"], base["input_dim"])]
  for r in rows.values():
    r["time_vs_base"] = r["sec_per_inner_step"] / ref["sec_per_inner_step"]
    r["formula_flops_vs_base"] = r["formula_flops"] / ref["formula_flops"]
  table = {
    axis: [rows[(p["batch"], p["width"], p["input_dim"])] for p in (dict(base, **{axis: v}) for v in values)]
    for axis, values in axes.items()
  }
  return {
    "k": k,
    "base": base,
    "hidden_layers": depth,
    "compiler_options": compiler_options or {},
    "rule": {"compute_h_size": int(base_cfg.rule.compute_h_size)},
    **table,
  }
