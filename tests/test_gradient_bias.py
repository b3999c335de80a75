"""The truncation-bias diagnostic: its full-horizon finite differences and its statistics."""

import numpy as np
import pytest

from experiments.tools import gradient_bias_estimates as gradient_bias


def test_with_one_truncation_per_task_the_two_estimates_agree(tiny_cfg, tiny_theta):
  # A horizon of one truncation: nothing is truncated, so truncated backprop is the full-horizon
  # gradient and the finite differences must find it (to O(σ²) and the float32 loss's rounding,
  # ~1e-7 / 2σ: the untrained θ's mixing-weight gradients are ~1e-4, so σ is large).
  cfg = tiny_cfg.copy_and_resolve_references()
  k = int(min(cfg.unroll.lengths))
  out = gradient_bias.truncation_bias(cfg, tiny_theta, num_tasks=2, horizon=k, sigma=0.1, log=lambda _: None)
  for task in out["tasks"]:
    t, f = np.asarray(task["tbptt"]), np.asarray(task["full"])
    assert np.linalg.norm(t) > 0
    np.testing.assert_allclose(f, t, rtol=0.1, atol=0.1 * np.abs(t).max())
  assert out["cosine_of_means"] > 0.98
  assert len(out["mean_gradient"]["terms"]) == len(out["mean_gradient"]["tbptt"]) == 12


def test_with_several_truncations_truncated_backprop_is_not_the_full_gradient(tiny_cfg, tiny_theta):
  # Three truncations: the later ones see their start state as a constant, so the estimates differ.
  cfg = tiny_cfg.copy_and_resolve_references()
  k = int(min(cfg.unroll.lengths))
  out = gradient_bias.truncation_bias(
    cfg, tiny_theta, num_tasks=1, horizon=3 * k, sigma=1e-2, log=lambda _: None
  )
  (task,) = out["tasks"]
  assert not np.allclose(task["tbptt"], task["full"], rtol=1e-3)


def test_summary_statistics_are_invariant_where_they_must_be():
  rng = np.random.default_rng(0)
  g = rng.normal(size=(16, 12))
  w = rng.normal(size=12)
  same = gradient_bias.summarise(g, g, w)
  assert same["cosine_of_means"] == pytest.approx(1.0)
  assert same["per_task_cosine"]["mean"] == pytest.approx(1.0)
  assert same["descent_along_mixing_weights"]["tbptt"] == same["descent_along_mixing_weights"]["full"]
  flipped = gradient_bias.summarise(g, -3 * g, w)
  assert flipped["cosine_of_means"] == pytest.approx(-1.0)  # the scale does not matter, the sign does
  d = flipped["descent_along_mixing_weights"]
  assert d["full"]["mean"] == pytest.approx(-3 * d["tbptt"]["mean"])
  assert flipped["split_half_cosine"]["tbptt"] == pytest.approx(flipped["split_half_cosine"]["full"])


def test_radial_differences_give_the_projection_on_the_mixing_weights(tiny_cfg, tiny_theta):
  cfg = tiny_cfg.copy_and_resolve_references()
  k = int(min(cfg.unroll.lengths))
  kw = dict(num_tasks=2, horizon=k, sigma=0.1, log=lambda _: None)
  full = gradient_bias.truncation_bias(cfg, tiny_theta, **kw)
  radial = gradient_bias.truncation_bias(cfg, tiny_theta, directions="radial", **kw)
  a, b = full["descent_along_mixing_weights"], radial["descent_along_mixing_weights"]
  assert a["tbptt"]["mean"] == pytest.approx(b["tbptt"]["mean"], rel=1e-6)
  assert b["full"]["mean"] == pytest.approx(a["full"]["mean"], rel=0.1)


def test_bad_settings_are_refused(tiny_cfg, tiny_theta):
  k = int(min(tiny_cfg.unroll.lengths))
  with pytest.raises(ValueError, match="multiple of the truncation length"):
    gradient_bias.truncation_bias(tiny_cfg, tiny_theta, num_tasks=1, horizon=k + 1, sigma=0.01)
  with pytest.raises(ValueError, match="directions"):
    gradient_bias.truncation_bias(tiny_cfg, tiny_theta, num_tasks=1, horizon=k, sigma=0.1, directions="x")
  with pytest.raises(ValueError, match="sigma"):
    gradient_bias.truncation_bias(tiny_cfg, tiny_theta, num_tasks=1, horizon=k, sigma=0.0)


@pytest.mark.slow
def test_cli_writes_the_json_and_refuses_a_bad_horizon(tmp_path):
  import json
  import subprocess
  import sys

  base = [
    sys.executable,
    "-m",
    "experiments.tools.gradient_bias",
    "--config=configs/tiny.py",
    "--theta=random",
  ]
  bad = subprocess.run(base + ["--horizon=3"], capture_output=True, text=True)
  assert bad.returncode == 2 and "multiple of the truncation length" in bad.stderr
  out = tmp_path / "bias.json"
  ok = subprocess.run(
    base + ["--num_tasks=2", "--horizon=4", "--sigma=0.1", f"--out={out}"], capture_output=True, text=True
  )
  assert ok.returncode == 0, ok.stderr[-2000:]
  result = json.loads(ok.stdout.strip().splitlines()[-1])
  assert result["num_tasks"] == 2 and len(result["tasks"]) == 2
  from meta_unsup_rules.util import run_record

  assert json.loads(out.read_text())[run_record.RECORD_KEY]["command"]


def test_extending_an_earlier_result_equals_running_all_tasks_at_once(tiny_cfg, tiny_theta):
  # The earlier result's tasks are kept and the rest are the tasks a longer run would have drawn.
  cfg = tiny_cfg.copy_and_resolve_references()
  kw = dict(horizon=int(min(cfg.unroll.lengths)), sigma=0.1, directions="radial", log=lambda _: None)
  both = gradient_bias.truncation_bias(cfg, tiny_theta, num_tasks=2, **kw)
  first = gradient_bias.truncation_bias(cfg, tiny_theta, num_tasks=1, **kw)
  extended = gradient_bias.truncation_bias(cfg, tiny_theta, num_tasks=2, earlier_tasks=first["tasks"], **kw)
  assert extended["tasks"][0] == first["tasks"][0]
  for a, b in zip(extended["tasks"], both["tasks"]):
    np.testing.assert_allclose(a["full"], b["full"], rtol=1e-6)
    np.testing.assert_allclose(a["tbptt"], b["tbptt"], rtol=1e-6)
  got, want = extended["descent_along_mixing_weights"], both["descent_along_mixing_weights"]
  for name in ("tbptt", "full"):
    assert np.isclose(got[name]["mean"], want[name]["mean"], rtol=1e-6)


def test_es_estimate_is_unbiased_for_a_linear_function():
  # Directional derivatives of g·x along Gaussian directions: the mean of the estimates over many
  # draws is g, and one draw of 12-dim directions is not (it is an estimate with noise).
  rng = np.random.default_rng(0)
  g = rng.normal(size=12)
  w = rng.normal(size=12)
  draws = [gradient_bias.directions_for(w, "random", rng, num=4) for _ in range(4000)]
  estimates = np.array([gradient_bias.es_estimate(d @ g, d) for d in draws])
  np.testing.assert_allclose(estimates.mean(0), g, atol=0.06 * np.abs(g).max() + 0.03)
  assert not np.allclose(estimates[0], g, atol=0.05)
  d = gradient_bias.directions_for(w, "random", np.random.default_rng(1), num=3)
  assert d.shape == (3, 12)


def test_random_directions_keep_the_whole_truncated_gradient_and_agree_on_one_truncation(
  tiny_cfg, tiny_theta
):
  # One truncation per task: truncated backprop is the full gradient, so the ES estimate's mean
  # over directions is an unbiased estimate of it; with many directions their cosine is high,
  # and the truncated-backprop 12-vector is the coordinates run's (no projection).
  cfg = tiny_cfg.copy_and_resolve_references()
  kw = dict(num_tasks=1, horizon=int(min(cfg.unroll.lengths)), sigma=0.1, log=lambda _: None)
  coords = gradient_bias.truncation_bias(cfg, tiny_theta, **kw)
  es = gradient_bias.truncation_bias(cfg, tiny_theta, directions="random", num_directions=48, **kw)
  np.testing.assert_allclose(es["tasks"][0]["tbptt"], coords["tasks"][0]["tbptt"], rtol=1e-6)
  assert es["num_directions"] == 48
  t, f = np.asarray(coords["tasks"][0]["tbptt"]), np.asarray(es["tasks"][0]["full"])
  assert f @ t / (np.linalg.norm(f) * np.linalg.norm(t)) > 0.8
  with pytest.raises(ValueError, match="num_directions"):
    gradient_bias.truncation_bias(cfg, tiny_theta, directions="random", num_directions=0, **kw)
