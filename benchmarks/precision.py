"""Is the h network fast enough, and accurate enough, in bfloat16?

The h network's convolutions are most of the rule's FLOPs (`benchmarks.flops`), so its dtype
(`rule.h_dtype`) is the one precision knob worth turning. The study runs the rule and a
meta-gradient with each dtype on the same θ, state and batches, and sets the low-precision
meta-gradient's error against the sampling noise between two float32 batch streams.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.benchmarks import xla
from meta_unsup_rules.learned_update import unroll

H_DTYPES = ("float32", "bfloat16")


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.asarray(l, np.float64).ravel() for l in jax.tree_util.tree_leaves(tree)])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
  return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def h_dtype_study(
  cfg, shapes: dict, k: int = 5, dtypes=H_DTYPES, compiler_options=None, compile_threads: int = 2, log=print
) -> dict:
  """Speed of the rule and of a meta-gradient with the h network in each dtype, and the error.

  Every dtype runs on the same θ, base model and batches. The error of a low-precision
  meta-gradient is its cosine to the float32 one and its relative L2 distance; for scale,
  `sampling_cosine` is the cosine between two float32 meta-gradients from the same start
  on different batches (the noise that averaging over a learner batch already has to beat).
  """
  cfg = shapes_lib.shaped_config(cfg, shapes)
  num_classes = shapes["num_classes"]
  theta, state, batches = shapes_lib.inputs(cfg, shapes, k)
  other = shapes_lib.inputs(cfg, shapes, k, seed=1)[2]  # another batch stream, same θ and state
  jobs, fns = [], {}
  for dtype in dtypes:
    c = cfg.copy_and_resolve_references()
    c.rule.h_dtype = dtype
    fns[dtype] = unroll.make_unroll_fns(c)
    jobs.append((xla.lower(fns[dtype].apply_rule, theta, state, batches["unlabelled"])[0], compiler_options))
    jobs.append(
      (
        xla.lower(fns[dtype].meta_gradient, theta, state, batches, num_classes=num_classes)[0],
        compiler_options,
      )
    )
  t = time.perf_counter()
  compiled = [c for c, _, _ in xla.compile_many(jobs, compile_threads)]
  log(f"  {len(jobs)} executables compiled in {time.perf_counter() - t:.0f} s")
  out = {"k": int(k), "shapes": shapes_lib.describe(cfg, shapes), "dtypes": {}}
  reference = None
  for i, dtype in enumerate(dtypes):
    apply_rule, meta_grad = compiled[2 * i], compiled[2 * i + 1]
    step_sec = xla.time_call(apply_rule, (theta, state, batches["unlabelled"]), min_calls=2, max_calls=3) / k
    mg_sec = xla.time_call(meta_grad, (theta, state, batches), min_calls=1, max_calls=2)
    loss, _, _, grads = meta_grad(theta, state, batches)
    g = _flat(grads)
    row = {
      "sec_per_inner_step": step_sec,
      "sec_per_meta_grad": mg_sec,
      "meta_loss": float(loss),
      "grad_norm": float(np.linalg.norm(g)),
      "finite": bool(np.all(np.isfinite(g))),
    }
    if reference is None:
      reference = {"g": g, "row": row}
      g_other = _flat(meta_grad(theta, state, other)[3])
      row["sampling_cosine"] = _cosine(g, g_other)
    else:
      ref = reference["row"]
      row.update(
        {
          "speedup_inner_step": ref["sec_per_inner_step"] / step_sec,
          "speedup_meta_grad": ref["sec_per_meta_grad"] / mg_sec,
          "grad_cosine_to_float32": _cosine(g, reference["g"]),
          "grad_rel_error": float(
            np.linalg.norm(g - reference["g"]) / (np.linalg.norm(reference["g"]) + 1e-30)
          ),
          "meta_loss_abs_diff": abs(float(loss) - ref["meta_loss"]),
        }
      )
    out["dtypes"][dtype] = row
    log(
      f"  h_dtype {dtype}: {step_sec * 1e3:.1f} ms/inner step, {mg_sec:.2f} s/meta-grad (k={k})"
      + (
        f", grad cosine to float32 {row['grad_cosine_to_float32']:.4f}"
        if "grad_cosine_to_float32" in row
        else f", sampling cosine {row['sampling_cosine']:.3f}"
      )
    )
  return out
