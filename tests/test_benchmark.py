"""The benchmark end to end: --quick mode (configs/tiny.py shapes), full mode with compiles stubbed,
one tiny Ray worker. Its formulas and extrapolations: test_benchmark_formulas.py."""

import json

import pytest
import ray

from meta_unsup_rules.benchmarks import (
  device,
  evaluation_speed,
  meta_gradient,
  op_profile,
  precision,
  ray_scaling,
  report,
  run,
  xla,
)

pytestmark = pytest.mark.slow


# First in the file: Ray should start before this process runs JAX (it forks).
def test_ray_scaling_with_one_tiny_worker():
  assert not ray.is_initialized()
  cfg = ray_scaling.ray_task_config("configs.tiny")
  r = ray_scaling.ray_scaling(
    cfg, worker_counts=(1,), measure_sec=2.0, min_results=2, deadline_sec=600.0, log=lambda *a: None
  )
  assert not ray.is_initialized()  # its own instance, shut down
  w = r["workers"]["1"]
  assert w["meta_grads_per_sec"] > 0 and w["results"] >= 2 and w["restarts"] == 0
  assert r["ray_scaling_2_over_1"] == pytest.approx(1.0)
  assert 0 <= r["learner_share"] < 1 and r["task"]["layer_widths"] == [24, 24, 8]


@pytest.fixture(scope="module")
def quick_result():
  # cold_compile=False: the suite's persistent cache may serve every compile here.
  return run.run_benchmark(quick=True, skip_ray=True, cold_compile=False, log=lambda *a: None)


def test_quick_benchmark_has_every_key_and_sane_figures(quick_result):
  r = quick_result
  for key in (
    "device",
    "matmul_peak_gflops",
    "configs",
    "scaling",
    "fraction_of_peak",
    "ray_scaling_2_over_1",
    "learner_share",
    "compile_sec",
    "peak_memory_bytes",
    "max_rss_bytes",
    "wall_sec",
    "evaluation_speed",
  ):
    assert key in r, key
  ev = r["evaluation_speed"]
  assert set(ev["methods"]) == set(evaluation_speed.QUICK["methods"])
  assert all(v["sec"] > 0 and v["seeds_per_sec"] > 0 for v in ev["methods"].values())
  assert r["device"]["platform"] and r["device"]["device_kind"]
  assert r["matmul_peak_gflops"] > 0 and r["matmul_peak_bf16_gflops"] > 0
  assert r["compiler_options"] == xla.FAST_COMPILE
  json.loads(json.dumps(r))  # plain JSON
  ((name, c),) = r["configs"].items()
  assert name == "tiny"
  # The shapes come from configs/tiny.py's meta-training task distribution.
  assert c["shapes"]["input_dim"] == 64 and c["shapes"]["layer_widths"] == [24, 24, 8]
  assert c["shapes"]["inner_batch_size"] == 16 and c["shapes"]["num_classes"] == 3
  assert c["inner_steps_per_sec"] > 0
  assert set(c["meta_grad"]) == {str(k) for k in meta_gradient.QUICK_REPORT_KS}
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
  text = report.format_report(r)
  assert "tiny" in text and "not representative" in text and "bfloat16" in text
  prof = r["op_profile"]
  assert prof["available"] and prof["k"] == 2 and prof["op_sec_per_call"] > 0
  assert sum(prof["share"].values()) == pytest.approx(1.0)
  assert prof["ops_per_call"].get("elementwise", 0) > 0 and prof["ops_per_call"].get("dot_other", 0) > 0
  assert "meta-gradient op time" in text


def test_tasks_per_call_section_measures_each_n(quick_result):
  t = quick_result["tasks_per_call"]
  assert sorted(t["per_n"], key=int) == ["1", "2", "4"] and t["k"] == 2
  for r in t["per_n"].values():
    assert r["sec_per_call"] > 0 and r["meta_grads_per_sec"] > 0 and r["meta_grads_per_core_hour"] > 0
  assert t["per_n"]["1"]["ratio_to_n1"] == 1.0 and str(t["best_n"]) in t["per_n"]
  assert "tasks per compiled call" in report.format_report(quick_result)


def test_inline_against_async_validation_side_by_side():
  from meta_unsup_rules.benchmarks import validation_modes

  r = validation_modes.measure(
    config="configs/tiny.py",
    minutes=1.0,
    every=2,
    seeds=2,
    warm_minutes=0.0,
    task_overrides=(),
    log=lambda *a: None,
  )
  if "skipped" in r:
    pytest.skip(r["skipped"])
  for mode in ("inline", "async"):
    assert r[mode]["updates"] >= 3 and r[mode]["updates_per_hour"] > 0 and r[mode]["validations"] >= 1
  assert r["inline"]["validation_wait_sec"] > 0
  assert r["async"]["validation_wait_share"] < r["inline"]["validation_wait_share"]
  assert r["speedup"] == pytest.approx(r["async"]["updates_per_hour"] / r["inline"]["updates_per_hour"])
  text = report.format_report({"wall_sec": 1.0, "validation_modes": r})
  assert "async / inline" in text


def test_bfloat16_h_network_is_compared_with_float32_on_the_same_inputs(quick_result):
  h = quick_result["h_dtype"]
  assert set(h["dtypes"]) == set(precision.H_DTYPES) and h["shapes"]["input_dim"] == 64
  ref, low = h["dtypes"]["float32"], h["dtypes"]["bfloat16"]
  assert ref["finite"] and low["finite"]
  assert -1.0 <= ref["sampling_cosine"] <= 1.0
  # Same θ, state and batches: the low-precision gradient points the same way, the loss agrees.
  assert low["grad_cosine_to_float32"] > 0.5 and low["grad_rel_error"] < 1.0
  assert low["meta_loss_abs_diff"] < 1e-2
  assert low["speedup_meta_grad"] > 0 and low["speedup_inner_step"] > 0
  assert quick_result["bfloat16_h"]["grad_cosine_to_float32"] == low["grad_cosine_to_float32"]


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
  monkeypatch.setattr(xla, "lower", lambda jitted, *args, **static: (None, 0.0))
  monkeypatch.setattr(xla, "compile_one", lambda lowered, options=None: (_FakeExecutable(), 0.5, 0))
  monkeypatch.setattr(
    device,
    "matmul_peak",
    lambda n=None, repeats=5: {
      "n": 8,
      "repeats": repeats,
      "gflops_per_sec": 100.0,
      "best_sec": 1.0,
      "bfloat16_f32_accumulate_gflops_per_sec": 300.0,
    },
  )
  studied = []

  def fake_h_dtype_study(cfg, shapes, k, **kwargs):  # needs real gradients: the quick test runs it
    studied.append((shapes["input_dim"], k))
    low = {
      "speedup_inner_step": 0.5,
      "speedup_meta_grad": 0.8,
      "grad_cosine_to_float32": 0.9,
      "grad_rel_error": 0.4,
    }
    return {"k": k, "dtypes": {"float32": {"sampling_cosine": 0.1}, "bfloat16": low}}

  monkeypatch.setattr(precision, "h_dtype_study", fake_h_dtype_study)
  monkeypatch.setattr(op_profile, "meta_gradient_profile", lambda *a, **kw: {"available": False})
  monkeypatch.setattr(
    evaluation_speed,
    "evaluation_speed",
    lambda cfg, quick, log: {"task": "t", "seeds": 1, "inner_steps": 1, "batch_seeds": "off", "methods": {}},
  )
  r = run.run_benchmark(("paper", "local"), skip_ray=True, cold_compile=False, log=lambda *a: None)
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
  imp = r["implementations"]
  assert set(imp) == {"paper", "local"} and imp["local"]["k"] == 10
  assert set(imp["local"]["implementations"]) == {"reference", "fused"}
  assert set(r["meta_grads_per_core_hour_by_implementation"]["paper"]) == {"reference", "fused"}
  text = report.format_report(r)
  assert "meta-grads / s, k=50" in text and "(extr.)" in text
  assert "old vs new (local, k = 10" in text and "fused / reference: meta-gradient x" in text
  json.loads(json.dumps(r))
