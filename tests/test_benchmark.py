"""The benchmark in --quick mode (configs/tiny.py shapes), its pure functions, one tiny Ray worker."""
import json

import numpy as np
import pytest

from learned_update import benchmark

pytestmark = pytest.mark.slow


# First in the file: Ray should start before this process runs JAX (it forks).
def test_ray_scaling_with_one_tiny_worker():
  import ray
  assert not ray.is_initialized()
  cfg = benchmark.ray_task_config("configs.tiny")
  r = benchmark.ray_scaling(cfg, worker_counts=(1,), measure_sec=2.0, min_results=2,
                            deadline_sec=600.0, log=lambda *a: None)
  assert not ray.is_initialized()  # its own instance, shut down
  w = r["workers"]["1"]
  assert w["meta_grads_per_sec"] > 0 and w["results"] >= 2 and w["restarts"] == 0
  assert r["ray_scaling_2_over_1"] == pytest.approx(1.0)
  assert 0 <= r["learner_share"] < 1 and r["task"]["layer_widths"] == [24, 24, 8]


@pytest.fixture(scope="module")
def quick_result():
  # cold_compile=False: the suite's persistent cache may serve every compile here.
  return benchmark.run_benchmark(quick=True, skip_ray=True, cold_compile=False, log=lambda *a: None)


def test_quick_benchmark_has_every_key_and_sane_figures(quick_result):
  r = quick_result
  for key in ("device", "matmul_peak_gflops", "configs", "scaling", "fraction_of_peak",
              "ray_scaling_2_over_1", "learner_share", "compile_sec", "peak_memory_bytes",
              "max_rss_bytes", "wall_sec"):
    assert key in r, key
  assert r["device"]["platform"] and r["device"]["device_kind"]
  assert r["matmul_peak_gflops"] > 0 and r["matmul_peak_bf16_gflops"] > 0
  assert r["compiler_options"] == benchmark.FAST_COMPILE
  json.loads(json.dumps(r))  # plain JSON
  (name, c), = r["configs"].items()
  assert name == "tiny"
  # The shapes come from configs/tiny.py's meta-training task distribution.
  assert c["shapes"]["input_dim"] == 64 and c["shapes"]["layer_widths"] == [24, 24, 8]
  assert c["shapes"]["inner_batch_size"] == 16 and c["shapes"]["num_classes"] == 3
  assert c["inner_steps_per_sec"] > 0
  assert set(c["meta_grad"]) == {str(k) for k in benchmark.QUICK_REPORT_KS}
  assert all(v["meta_grads_per_sec"] > 0 and v["xla_flops"] > 0 for v in c["meta_grad"].values())
  assert c["meta_grad"]["2"]["measured"] and not c["meta_grad"]["5"]["measured"]
  assert c["compile_sec"]["apply_rule"] > 0 and c["compile_sec"]["meta_grad_k2"] > 0
  assert r["compile_sec"]["tiny"]["k"] == 2
  assert 0 < c["fraction_of_peak"] <= 1.5 and 0 < c["fraction_of_peak_inner_step"] <= 1.5
  assert r["fraction_of_peak"]["tiny"] == c["fraction_of_peak"]
  f = c["flops"]
  assert f["loop_body_counted_once"] in (True, False)
  # XLA also counts elementwise work: a little above the matmul formula (~1.1-1.4).
  assert 0.8 <= f["ratio_inner_step"] <= 2.0 and 0.8 <= f["ratio_meta_grad"] <= 2.0
  assert c["peak_memory_bytes"] > 0
  mem = c["memory_vs_k"]
  assert mem["checkpoint"]["2"] > 0 and mem["no_checkpoint"]["2"] > 0
  assert mem["checkpoint"]["2"] == c["memory"]["meta_grad_k2"]["peak_bytes"]
  s = r["scaling"]
  assert [row["batch"] for row in s["batch"]] == [8, 16]
  for axis in ("batch", "width", "input_dim"):
    assert s[axis] and all(row["sec_per_inner_step"] > 0 for row in s[axis])
  base = s["batch"][1]
  assert base["time_vs_base"] == 1.0 and base["sec_per_inner_step"] == c["sec_per_inner_step"]
  report = benchmark.format_report(r)
  assert "tiny" in report and "not representative" in report and "bfloat16" in report


def test_bfloat16_h_network_is_compared_with_float32_on_the_same_inputs(quick_result):
  h = quick_result["h_dtype"]
  assert set(h["dtypes"]) == set(benchmark.H_DTYPES) and h["shapes"]["input_dim"] == 64
  ref, low = h["dtypes"]["float32"], h["dtypes"]["bfloat16"]
  assert ref["finite"] and low["finite"]
  assert -1.0 <= ref["sampling_cosine"] <= 1.0
  # Same θ, state and batches: the low-precision gradient points the same way, the loss agrees.
  assert low["grad_cosine_to_float32"] > 0.5 and low["grad_rel_error"] < 1.0
  assert low["meta_loss_abs_diff"] < 1e-2
  assert low["speedup_meta_grad"] > 0 and low["speedup_inner_step"] > 0
  assert quick_result["bfloat16_h"]["grad_cosine_to_float32"] == low["grad_cosine_to_float32"]


def test_extrapolation_marks_unmeasured_k():
  flops = {"xla_per_meta_grad_step": 1.0}
  results = {"a": {"meta_grad": {"5": {"sec": 2.0, "measured": True},
                                 "20": {"sec": 5.0, "measured": True}}, "flops": flops},
             "b": {"meta_grad": {"5": {"sec": 4.0, "measured": True}}, "flops": flops}}
  benchmark.extrapolate(results, (5, 20, 50))
  a50, b20 = results["a"]["meta_grad"]["50"], results["b"]["meta_grad"]["20"]
  assert not a50["measured"] and a50["sec"] == pytest.approx(11.0)  # 1 s + 0.2 s * k
  assert not b20["measured"] and b20["sec"] == pytest.approx(10.0)  # 4 s * (5 / 2)
  assert results["b"]["meta_grads_per_sec"]["5"] == pytest.approx(0.25)


def test_memory_against_k_extends_the_measured_ks_affinely():
  from configs import local
  cfg = local.get_config()
  timed = {"meta_grad_k5": {"peak_bytes": 150}, "meta_grad_k20": {"peak_bytes": 300}}
  memory_only = {(False, 5): 1_000, (False, 20): 4_000}
  m = benchmark._memory_vs_k(cfg, timed, memory_only, (5, 20), (5, 20))  # pylint: disable=protected-access
  assert m["checkpoint"] == {"5": 150, "20": 300, "50": 600}
  assert m["no_checkpoint"] == {"5": 1_000, "20": 4_000, "50": 10_000}
  assert m["extrapolated_ks"] == [50] and m["no_checkpoint_bytes_per_step"] == pytest.approx(200.0)


def test_flop_formulas():
  from configs import local, paper
  cfg = paper.get_config().rule
  # c_in = 8 stats + bias + 4 unit features + 32 delta = 45; h = 64, kernel 3, 2 blocks.
  macs = 3 * 45 * 64 + 2 * 3 * 64 * 64 + 3 * 3 * 64 * 64
  units = (196, 128, 128, 128, 128, 32)
  assert benchmark.h_network_flops(cfg, 128, units) == 2 * 128 * 740 * macs
  assert np.isclose(benchmark.meta_grad_passes(cfg), 4)
  step = benchmark.rule_step_flops(cfg, 128, units)
  assert step["compute_h"] == benchmark.h_network_flops(cfg, 128, units)
  assert step["total"] == pytest.approx(sum(v for k, v in step.items() if k != "total"))
  assert 0.6 < step["compute_h"] / step["total"] < 0.95  # the h network dominates
  # local's shapes: XLA's cost analysis gave 1.83 GFLOP per inner step (ratio ~1.08).
  lcfg = local.get_config()
  assert benchmark.rule_step_flops(lcfg.rule, 32, (256, 128, 128, 128, 128, 32))["total"] == pytest.approx(
      1.70e9, rel=0.02)
  ev = benchmark.evaluation_flops(lcfg.meta_objective, units, 10, 14)
  assert ev["features"] == 2 * 2 * 2 * 100 * (196 * 128 + 3 * 128 * 128 + 128 * 32)


def test_bench_shapes_follow_the_configs():
  from configs import local, paper
  p = benchmark.bench_shapes(paper.get_config(), "tiny_mnist")
  assert (p["input_dim"], p["hidden_widths"], p["batch"]) == (196, (128, 128, 128, 128), 128)
  cfg = local.get_config()
  l = benchmark.bench_shapes(cfg, "meta_train")
  t = cfg.task
  assert l["input_dim"] == t.image_size ** 2 and l["batch"] == cfg.unroll.inner_batch_size
  assert l["hidden_widths"] == (t.width_max,) * t.depth_max
  axes = benchmark.scaling_axes({"batch": l["batch"], "width": t.width_max, "input_dim": l["input_dim"]})
  assert axes["batch"] == (cfg.unroll.inner_batch_size, 2 * cfg.unroll.inner_batch_size)
  rc = benchmark.ray_task_config("configs.local")
  assert rc.task.depth_min == rc.task.depth_max == t.depth_max
  assert rc.task.width_min == t.width_max and len(rc.unroll.lengths) == 1



class _FakeExecutable:
  """Stands in for a compiled executable: instant calls, fixed costs."""

  def __call__(self, *args):
    return None

  def cost_analysis(self):
    return {"flops": 1e9}

  def memory_analysis(self):
    class M:
      argument_size_in_bytes, output_size_in_bytes, alias_size_in_bytes = 1000, 100, 0
      temp_size_in_bytes, generated_code_size_in_bytes = 10_000, 0
    return M()


def test_full_mode_plumbing_with_compilation_stubbed(monkeypatch):
  # Everything of the full run (paper + local, 3-value scaling axes, memory against k
  # extended to k=50, paper's k=20/50 from local's growth) but lowering, compilation and
  # the matmul peak (the quick test runs those, at tiny shapes, through the same code).
  monkeypatch.setattr(benchmark, "_lower", lambda jitted, *args, **static: (None, 0.0))
  monkeypatch.setattr(benchmark, "_compile", lambda lowered, options=None: (_FakeExecutable(), 0.5, 0))
  monkeypatch.setattr(benchmark, "matmul_peak", lambda n=None, repeats=5: {
      "n": 8, "repeats": repeats, "gflops_per_sec": 100.0, "best_sec": 1.0,
      "bfloat16_f32_accumulate_gflops_per_sec": 300.0})
  studied = []

  def fake_h_dtype_study(cfg, shapes, k, **kwargs):  # needs real gradients: the quick test runs it
    studied.append((shapes["input_dim"], k))
    low = {"speedup_inner_step": 0.5, "speedup_meta_grad": 0.8, "grad_cosine_to_float32": 0.9,
           "grad_rel_error": 0.4}
    return {"k": k, "dtypes": {"float32": {"sampling_cosine": 0.1}, "bfloat16": low}}

  monkeypatch.setattr(benchmark, "h_dtype_study", fake_h_dtype_study)
  r = benchmark.run_benchmark(("paper", "local"), skip_ray=True, cold_compile=False, log=lambda *a: None)
  assert set(r["configs"]) == {"paper", "local"}
  paper, local = r["configs"]["paper"], r["configs"]["local"]
  assert paper["shapes"]["input_dim"] == 196 and paper["shapes"]["layer_widths"] == [128] * 4 + [32]
  assert local["shapes"]["inner_batch_size"] == 32 and local["shapes"]["input_dim"] == 256
  for c in (paper, local):
    assert set(c["meta_grad"]) == {"5", "20", "50"}
  assert [k for k, v in local["meta_grad"].items() if v["measured"]] == ["5", "20"]
  assert "measured on config 'local'" in paper["meta_grad"]["50"]["method"]
  mem = local["memory_vs_k"]
  assert set(mem["checkpoint"]) == set(mem["no_checkpoint"]) == {"5", "20", "50"}
  assert mem["extrapolated_ks"] == [50]
  s = r["scaling"]
  assert [row["batch"] for row in s["batch"]] == [32, 64]
  assert [row["width"] for row in s["width"]] == [128, 256]
  assert [row["input_dim"] for row in s["input_dim"]] == [256, 784]
  assert s["hidden_layers"] == 3
  assert studied == [(256, 5)]  # at local's shapes and first measured k
  report = benchmark.format_report(r)
  assert "meta-grads / s, k=50" in report and "(extr.)" in report
  json.loads(json.dumps(r))
