"""A human-readable table of `benchmarks.run.run_benchmark`'s result (the JSON has every figure).

Only what a reader compares at a glance: rates, the two compiles that ran alone, FLOPs
against the formula, fraction of peak, memory, the scaling table, the bfloat16 study
and Ray's throughput.
"""

from __future__ import annotations


def _widths(widths) -> str:
  *hidden, top = widths
  if hidden and len(set(hidden)) == 1:
    return f"{hidden[0]}x{len(hidden)}+{top}"
  return "-".join(map(str, widths))


def _mib(x):
  return "-" if x is None else f"{x / 2**20:.0f} MiB"


def implementation_lines(result: dict) -> list[str]:
  """The old-vs-new section: reference against fused per config."""
  lines = []
  for name, r in result.get("implementations", {}).items():
    lines.append(f"old vs new ({name}, k = {r['k']}, {r['cores']} core(s), best of {r['rounds']} rounds):")
    for impl, v in r["implementations"].items():
      lines.append(
        f"  {impl:9s} {v['meta_grads_per_core_hour']:8.0f} meta-gradients per core-hour "
        f"({v['sec_per_meta_grad']:.3f} s each), {v['sec_per_inner_step'] * 1e3:.1f} ms per inner step; "
        f"compile meta-gradient {v['compile_meta_grad_sec']:.0f} s, "
        f"apply_rule {v['compile_apply_rule_sec']:.0f} s"
      )
    if r.get("speedup"):
      sp = r["speedup"]
      lines.append(
        f"  fused / reference: meta-gradient x{sp['meta_grad']:.2f}, inner step x{sp['inner_step']:.2f}, "
        f"compile time x{sp['compile_meta_grad']:.2f}"
      )
  return lines


def format_report(result: dict) -> str:
  """A human-readable summary of `run_benchmark`'s result."""
  if "matmul_peak" not in result:  # --only_compare / --only
    lines = implementation_lines(result) if "implementations" in result else []
    return "\n".join(lines + new_section_lines(result) + [f"wall time {result['wall_sec']:.0f} s"])
  d = result["device"]
  lines = [
    f"device: {d['platform']} ({d['device_kind']}), {d['cpu_cores']} cores, jax {d['jax']}; "
    f"matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s (float32 "
    f"{result['matmul_peak']['n']}x{result['matmul_peak']['n']}; bfloat16 operands "
    f"{result['matmul_peak_bf16_gflops']:.1f})"
  ]
  if result.get("compiler_options"):
    lines.append(f"compiler options {result['compiler_options']}: timings are not representative")
  lines.append("")
  names = list(result["configs"])
  lines.append(f"{'':34s}" + "".join(f"{n:>26s}" for n in names))

  def row(label, fn):
    cells = []
    for n in names:
      try:
        cells.append(fn(result["configs"][n]))
      except (KeyError, TypeError):
        cells.append("-")
    lines.append(f"{label:34s}" + "".join(f"{c:>26s}" for c in cells))

  def compile_cell(r, name):
    return f"{r['compile_sec'][name]:.1f}" + (" (cache)" if r["compile_cache_hits"][name] else "")

  row(
    "input / widths / batch / h size",
    lambda r: (
      f"{r['shapes']['input_dim']} / "
      f"{_widths(r['shapes']['layer_widths'])} / {r['shapes']['inner_batch_size']} / "
      f"{r['shapes']['compute_h_size']}"
    ),
  )
  row("inner steps / s (rule only)", lambda r: f"{r['inner_steps_per_sec']:.2f}")
  ks = sorted({int(k) for r in result["configs"].values() for k in r["meta_grad"]})
  for k in ks:
    row(
      f"meta-grads / s, k={k}",
      lambda r, k=k: (
        f"{r['meta_grad'][str(k)]['meta_grads_per_sec']:.3f}"
        + ("" if r["meta_grad"][str(k)]["measured"] else " (extr.)")
      ),
    )
  # Only the two compiles that ran alone: the others shared the cores (compile_sec in the JSON).
  row("compile s: apply_rule", lambda r: compile_cell(r, "apply_rule"))
  row(
    "compile s: meta-gradient",
    lambda r: compile_cell(r, f"meta_grad_k{r['compile']['k']}") + f" (k={r['compile']['k']})",
  )
  row("GFLOP / inner step (XLA)", lambda r: f"{r['flops']['xla_per_inner_step'] / 1e9:.3f}")
  row(
    "  formula, XLA/formula",
    lambda r: f"{r['flops']['formula_per_inner_step'] / 1e9:.3f}, {r['flops']['ratio_inner_step']:.2f}",
  )
  row("  h network share (formula)", lambda r: f"{r['flops']['h_network_share']:.0%}")
  row("GFLOP / meta-grad step (XLA)", lambda r: f"{r['flops']['xla_per_meta_grad_step'] / 1e9:.3f}")
  row(
    "  formula, XLA/formula",
    lambda r: f"{r['flops']['formula_per_meta_grad_step'] / 1e9:.3f}, {r['flops']['ratio_meta_grad']:.2f}",
  )
  row(
    "GFLOP/s inner step (of peak)",
    lambda r: f"{r['gflops_per_sec_inner_step']:.1f} ({r['fraction_of_peak_inner_step']:.0%})",
  )
  row(
    "GFLOP/s meta-grad (of peak)",
    lambda r: f"{r['gflops_per_sec_meta_grad']:.1f} ({r['fraction_of_peak']:.0%})",
  )
  row("peak memory (XLA), max", lambda r: _mib(r["peak_memory_bytes"]))
  mem_ks = sorted(
    {int(k) for r in result["configs"].values() for k in r.get("memory_vs_k", {}).get("checkpoint", {})}
  )
  for k in mem_ks:
    row(
      f"memory k={k}: ckpt / no ckpt",
      lambda r, k=k: (
        f"{_mib(r['memory_vs_k']['checkpoint'][str(k)])} / "
        f"{_mib(r['memory_vs_k']['no_checkpoint'][str(k)])}"
        + (" (extr.)" if k in r["memory_vs_k"].get("extrapolated_ks", []) else "")
      ),
    )
  if result.get("implementations"):
    lines += [""] + implementation_lines(result)
  if result.get("tasks_per_call") or result.get("validation_modes"):
    lines += [""] + new_section_lines(result)
  s = result.get("scaling")
  if s:
    lines += [
      "",
      f"time per inner step (rule only, k={s['k']}), base batch {s['base']['batch']}, "
      f"width {s['base']['width']} x{s['hidden_layers']}, input {s['base']['input_dim']}, "
      f"compute_h_size {s['rule']['compute_h_size']}:",
    ]
    for axis in ("batch", "width", "input_dim"):
      cells = ", ".join(
        f"{r[axis]}: {r['sec_per_inner_step'] * 1e3:.1f} ms (x{r['time_vs_base']:.2f}; "
        f"flops x{r['formula_flops_vs_base']:.2f})"
        for r in s[axis]
      )
      lines.append(f"  {axis:9s} {cells}")
  h = result.get("h_dtype")
  if h:
    ref = h["dtypes"]["float32"]
    lines += [
      "",
      f"h network in bfloat16 vs float32 (k={h['k']}; float32 sampling cosine between two "
      f"batches {ref['sampling_cosine']:.3f}):",
    ]
    for dtype, r in h["dtypes"].items():
      if dtype == "float32":
        continue
      lines.append(
        f"  {dtype}: inner step x{r['speedup_inner_step']:.2f}, meta-gradient "
        f"x{r['speedup_meta_grad']:.2f} speed; meta-gradient cosine to float32 "
        f"{r['grad_cosine_to_float32']:.4f}, relative error {r['grad_rel_error']:.3f}"
      )
  prof = result.get("op_profile", {})
  if prof.get("available"):
    shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(prof["share"].items(), key=lambda kv: -kv[1]))
    lines += [
      "",
      f"meta-gradient op time (k = {prof['k']}, {prof['op_sec_per_call']:.2f} s per call): {shares}",
    ]
  ev = result.get("evaluation_speed")
  if ev:
    lines += [
      "",
      f"evaluation ({ev['task']}, {ev['seeds']} seeds x {ev['inner_steps']} inner steps, "
      f"batch_seeds={ev['batch_seeds']}, compile included), seconds per seed: "
      + ", ".join(f"{m} {v['sec_per_seed']:.1f}" for m, v in ev["methods"].items()),
    ]
  ray = result.get("ray", {})
  if not ray.get("skipped"):
    w = ray["workers"]
    fmt = lambda x, spec: "-" if x is None else format(x, spec)
    lines += [
      "",
      "Ray (RayPool, pinned actors, after warm-up): "
      + ", ".join(f"{n} worker(s) {fmt(v['meta_grads_per_sec'], '.3f')} meta-grads/s" for n, v in w.items())
      + f"; 2/1 = {fmt(ray['ray_scaling_2_over_1'], '.2f')}; learner share {ray['learner_share']:.1%}",
      "  parallel efficiency (rate x median worker s per gradient / workers): "
      + ", ".join(f"{n}: {fmt(v['parallel_efficiency'], '.2f')}" for n, v in w.items()),
    ]
    per_hour = result.get("meta_grads_per_core_hour")
    if per_hour:
      lines.append(
        f"  meta-gradients per core-hour (one pinned actor, k = {per_hour['k']}, "
        f"widths {per_hour['layer_widths']}): {per_hour['value']:.0f}"
      )
  sections = ", ".join(f"{n} {v:.0f} s" for n, v in result.get("section_sec", {}).items())
  lines.append(f"wall time {result['wall_sec']:.0f} s ({sections})")
  return "\n".join(lines)


def new_section_lines(result: dict) -> list[str]:
  """Tasks per compiled call and inline vs async validation, when measured."""
  lines = []
  t = result.get("tasks_per_call")
  if t:
    lines.append(f"tasks per compiled call (k = {t['k']}, {t['cores']} core(s), {t['device']}):")
    for n, r in t["per_n"].items():
      if "meta_grads_per_sec" in r:
        lines.append(
          f"  N = {n:>4s}: {r['sec_per_call']:.3f} s per call, "
          f"{r['meta_grads_per_core_hour']:.0f} per core-hour, x{r['ratio_to_n1']:.2f} of N = 1"
        )
  v = result.get("validation_modes")
  if v and "inline" in v:
    lines.append(f"validation (every {v['every']} updates, {v['seeds']} seeds, {v['minutes']} min each):")
    for mode in ("inline", "async"):
      r = v[mode]
      cores = f"trainer core {r['trainer_core']}" + (
        f", evaluator core {r['evaluator_core']}" if mode == "async" else ""
      )
      lines.append(
        f"  {mode:6s}: {r['updates_per_hour']:.0f} updates per hour, waiting for validation "
        f"{100 * r['validation_wait_share']:.1f} % ({cores}); {r['validations']} validations"
      )
    lines.append(f"  async / inline: x{v['speedup']:.2f}")
  elif v:
    lines.append(f"validation modes: {v.get('skipped')}")
  return lines
