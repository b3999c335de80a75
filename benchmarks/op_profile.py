"""Where a meta-gradient's time goes, by kind of XLA operation (from a profiler trace).

Runs the compiled meta-gradient under `jax.profiler.trace` (Perfetto JSON, readable
without TensorBoard), reads every executed HLO op's duration and sorts it into
  * `dot_weight_grad`: dots that contract over the long rows axis to a small matrix (the
    gradients of the rule's convolution and linear weights: [rows, c] x [c', rows]);
  * `dot_other`: every other dot (forward convolutions, input gradients, the base model);
  * `elementwise`: every fusion without a dot (normalisations, activations, the shifted
    copies of the convolutions' inputs, reductions);
  * `data_movement`: concatenate, copy, slice, pad, transpose, dynamic-update-slice;
  * `other`.
A dot inside a library fusion (XLA:CPU wraps many dots with their elementwise epilogue)
counts as a dot. Shares are of the summed op time of the traced calls; ops run one at a
time on one core, so the sum is the compute time.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile

import jax

from meta_unsup_rules.benchmarks import shapes as shapes_lib
from meta_unsup_rules.learned_update import unroll

DATA_MOVEMENT = ("concatenate", "copy", "slice", "pad", "transpose", "dynamic-update-slice", "bitcast")


def _hlo_index(hlo_text: str) -> tuple[dict, dict]:
  """{op name: (shape, opcode, operands text)} and {computation name: body} of compiled HLO."""
  defs = {}
  for m in re.finditer(r"\n\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(([^\n]*)", hlo_text):
    defs[m.group(1)] = (m.group(2), m.group(3), m.group(4))
  comps = {m.group(1): m.group(2) for m in re.finditer(r"\n%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo_text, re.S)}
  return defs, comps


def _dims(shape: str) -> list[int]:
  """[4096, 32] of 'f32[4096,32]{1,0}'."""
  m = re.search(r"\[([\d,]*)\]", shape)
  return [int(x) for x in m.group(1).split(",") if x] if m else []


def _dot_kind(operands: str, shapes: list[str], out_shape: str) -> str:
  """'dot_weight_grad' when both operands share their long rows axis and the output is small."""
  dims = re.search(r"lhs_contracting_dims=\{(\d*)\}, rhs_contracting_dims=\{(\d*)\}", operands)
  out_size = 1
  for n in _dims(out_shape):
    out_size *= n
  in_rows = [_dims(s)[0] for s in shapes if _dims(s)]
  long_contraction = dims is not None and dims.group(1) == "0" and in_rows and max(in_rows) >= 1024
  return "dot_weight_grad" if long_contraction and out_size <= 64 * 1024 else "dot_other"


def classify(op_name: str, defs: dict, comps: dict) -> str:
  """The category of one executed op (module docstring)."""
  if op_name not in defs:
    base = re.sub(r"[._]\d+$", "", op_name)
    return "data_movement" if base in DATA_MOVEMENT else "other"
  shape, opcode, operands = defs[op_name]
  if opcode == "dot":
    args = re.findall(r"%([\w.\-]+)", operands)[:2]
    return _dot_kind(operands, [defs.get(a, ("",))[0] for a in args], shape)
  if opcode == "fusion":
    called = re.search(r"calls=%?([\w.\-]+)", operands)
    body = comps.get(called.group(1), "") if called else ""
    dot = re.search(
      r"(\S+) dot\(([^)]*)\)(, lhs_contracting_dims=\{\d*\}, rhs_contracting_dims=\{\d*\})", body
    )
    if dot:
      params = dict(re.findall(r"(%?[\w.\-]+) = (\S+) parameter", body))
      args = [a.strip() for a in dot.group(2).split(",")]
      return _dot_kind(dot.group(3), [params.get(a, "") for a in args], dot.group(1))
    return "elementwise"
  if any(opcode.startswith(k) for k in DATA_MOVEMENT):
    return "data_movement"
  return "other"


def op_profile(compiled, args: tuple, calls: int = 2) -> dict:
  """Category shares of the op time of `calls` runs of a compiled function on `args`."""
  jax.block_until_ready(compiled(*args))  # warm
  defs, comps = _hlo_index(compiled.as_text())
  with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
      for _ in range(calls):
        jax.block_until_ready(compiled(*args))
    paths = glob.glob(os.path.join(tmp, "**", "perfetto_trace.json.gz"), recursive=True)
    if not paths:
      return {"available": False}
    with gzip.open(paths[0]) as f:
      events = json.load(f)["traceEvents"]
  seconds = collections.Counter()
  counts = collections.Counter()
  for e in events:
    name = e.get("name", "")
    if e.get("ph") != "X" or name.startswith(("$", "ThunkExecutor")) or "dur" not in e:
      continue
    if e.get("args", {}).get("hlo_op") is None:
      continue
    kind = classify(name, defs, comps)
    seconds[kind] += e["dur"] * 1e-6 / calls
    counts[kind] += 1 / calls
  total = sum(seconds.values())
  return {
    "available": True,
    "op_sec_per_call": total,
    "share": {k: v / total for k, v in seconds.items()} if total else {},
    "sec_per_call": dict(seconds),
    "ops_per_call": {k: round(v) for k, v in counts.items()},
  }


def meta_gradient_profile(cfg, shapes: dict, k: int, compiler_options=None) -> dict:
  """`op_profile` of `cfg`'s meta-gradient at `shapes` and unroll length k."""
  cfg = shapes_lib.shaped_config(cfg, shapes)
  theta, state, batches = shapes_lib.inputs(cfg, shapes, k)
  lowered = unroll.make_unroll_fns(cfg).meta_gradient.lower(
    theta, state, batches, num_classes=shapes["num_classes"]
  )
  compiled = lowered.compile(compiler_options) if compiler_options else lowered.compile()
  return {"k": int(k), **op_profile(compiled, (theta, state, batches))}
