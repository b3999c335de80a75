"""The benchmark's pure parts: FLOP formulas, benchmarked shapes, extrapolation in k, memory against k.

No compilation here (fast); the end-to-end runs are in test_benchmark.py.
"""

import numpy as np
import pytest

from meta_unsup_rules.benchmarks import flops, meta_gradient, op_profile, ray_scaling, run, scaling, shapes
from meta_unsup_rules.configs import local, paper


def test_extrapolation_marks_unmeasured_k():
  per_step = {"xla_per_meta_grad_step": 1.0}
  results = {
    "a": {
      "meta_grad": {"5": {"sec": 2.0, "measured": True}, "20": {"sec": 5.0, "measured": True}},
      "flops": per_step,
    },
    "b": {"meta_grad": {"5": {"sec": 4.0, "measured": True}}, "flops": per_step},
  }
  meta_gradient.extrapolate(results, (5, 20, 50))
  a50, b20 = results["a"]["meta_grad"]["50"], results["b"]["meta_grad"]["20"]
  assert not a50["measured"] and a50["sec"] == pytest.approx(11.0)  # 1 s + 0.2 s * k
  assert not b20["measured"] and b20["sec"] == pytest.approx(10.0)  # 4 s * (5 / 2)
  assert results["b"]["meta_grads_per_sec"]["5"] == pytest.approx(0.25)


def test_memory_against_k_extends_the_measured_ks_affinely():
  cfg = local.get_config()
  timed = {"meta_grad_k5": {"peak_bytes": 150}, "meta_grad_k20": {"peak_bytes": 300}}
  memory_only = {(False, 5): 1_000, (False, 20): 4_000}
  m = meta_gradient.memory_vs_k(cfg, timed, memory_only, (5, 20), (5, 20))
  assert m["checkpoint"] == {"5": 150, "20": 300, "50": 600}
  assert m["no_checkpoint"] == {"5": 1_000, "20": 4_000, "50": 10_000}
  assert m["extrapolated_ks"] == [50] and m["no_checkpoint_bytes_per_step"] == pytest.approx(200.0)


def test_flop_formulas():
  cfg = paper.get_config().rule
  # c_in = 8 stats + bias + 4 unit features + 32 delta = 45; h = 64, kernel 3, 2 blocks.
  macs = 3 * 45 * 64 + 2 * 3 * 64 * 64 + 3 * 3 * 64 * 64
  units = (196, 128, 128, 128, 128, 32)
  assert flops.h_network_flops(cfg, 128, units) == 2 * 128 * 740 * macs
  assert np.isclose(flops.meta_grad_passes(cfg), 4)
  step = flops.rule_step_flops(cfg, 128, units)
  assert step["compute_h"] == flops.h_network_flops(cfg, 128, units)
  assert step["total"] == pytest.approx(sum(v for k, v in step.items() if k != "total"))
  assert 0.6 < step["compute_h"] / step["total"] < 0.95  # the h network dominates
  # local's shapes: XLA's cost analysis gave 1.83 GFLOP per inner step (ratio ~1.08).
  lcfg = local.get_config()
  assert flops.rule_step_flops(lcfg.rule, 32, (256, 128, 128, 128, 128, 32))["total"] == pytest.approx(
    1.70e9, rel=0.02
  )
  ev = flops.evaluation_flops(lcfg.meta_objective, units, 10, 14)
  assert ev["features"] == 2 * 2 * 2 * 100 * (196 * 128 + 3 * 128 * 128 + 128 * 32)


def test_bench_shapes_follow_the_configs():
  p = shapes.bench_shapes(paper.get_config(), "tiny_mnist")
  assert (p["input_dim"], p["hidden_widths"], p["batch"]) == (196, (128, 128, 128, 128), 128)
  cfg = local.get_config()
  l = shapes.bench_shapes(cfg, "meta_train")
  t = cfg.task
  assert l["input_dim"] == t.image_size**2 and l["batch"] == cfg.unroll.inner_batch_size
  assert l["hidden_widths"] == (t.width_max,) * t.depth_max
  axes = scaling.scaling_axes({"batch": l["batch"], "width": t.width_max, "input_dim": l["input_dim"]})
  assert axes["batch"] == (cfg.unroll.inner_batch_size, 2 * cfg.unroll.inner_batch_size)
  rc = ray_scaling.ray_task_config("configs.local")
  assert rc.task.depth_min == rc.task.depth_max == t.depth_max
  assert rc.task.width_min == t.width_max and len(rc.unroll.lengths) == 1


def test_meta_grads_per_core_hour_is_one_pinned_actor_for_an_hour():
  ray = {
    "workers": {"1": {"meta_grads_per_sec": 0.5}, "2": {"meta_grads_per_sec": 0.9}},
    "task": {"k": [10], "layer_widths": [128, 128, 32], "inner_batch_size": 32},
  }
  assert run.meta_grads_per_core_hour(ray)["value"] == 1800.0
  assert run.meta_grads_per_core_hour({"skipped": True}) is None


def test_op_profile_sorts_weight_gradient_dots_from_other_dots():
  hlo = """
%body {
  %a = f32[4096,96]{1,0} parameter(0)
  %g = f32[32,4096]{1,0} parameter(1)
  %w = f32[96,32]{1,0} parameter(2)
  %dot.1 = f32[96,32]{1,0} dot(%a, %g), lhs_contracting_dims={0}, rhs_contracting_dims={1}
  %dot.2 = f32[4096,32]{1,0} dot(%a, %w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %concatenate.3 = f32[4096,192]{1,0} concatenate(%a, %a), dimensions={1}
}
"""
  defs, comps = op_profile._hlo_index(hlo)
  assert op_profile.classify("dot.1", defs, comps) == "dot_weight_grad"
  assert op_profile.classify("dot.2", defs, comps) == "dot_other"
  assert op_profile.classify("concatenate.3", defs, comps) == "data_movement"


def test_tasks_per_call_doubles_to_the_largest_n_that_fits(monkeypatch):
  """On an accelerator N doubles until the device runs out of memory; the largest N that ran is kept."""
  from meta_unsup_rules.benchmarks import shapes as shapes_lib
  from meta_unsup_rules.benchmarks import tasks_per_call

  def fake_call(cfg, shapes, n, k):
    if n > 16:
      raise RuntimeError("RESOURCE_EXHAUSTED: out of memory allocating the batch")
    return (lambda: None), None

  monkeypatch.setattr(tasks_per_call, "_call", fake_call)
  monkeypatch.setattr(shapes_lib, "shaped_config", lambda cfg, shapes: cfg)
  monkeypatch.setattr(shapes_lib, "describe", lambda cfg, shapes: {})
  r = tasks_per_call.measure(
    None, {"num_classes": 3}, ns=(1, 8), k=2, rounds=1, largest=True, log=lambda *a: None
  )
  assert sorted(r["per_n"], key=int) == ["1", "8", "16"] and r["largest_fitting_n"] == 16
  assert r["stopped_at"]["n"] == 32 and "RESOURCE_EXHAUSTED" in r["stopped_at"]["error"]
  assert all("meta_grads_per_sec" in v for v in r["per_n"].values())
