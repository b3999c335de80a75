"""Meta-gradient noise statistics (experiments/tools/gradient_noise_estimates.py): invariants, a tiny run."""

import jax
import numpy as np

from experiments.tools import gradient_noise_estimates as gradient_noise
from meta_unsup_rules.learned_update import rule


def test_group_cosines_invariants():
  rng = np.random.default_rng(0)
  signal = rng.normal(size=50)
  same = np.stack([signal] * 8)
  assert abs(gradient_noise.group_cosines(same, 2)["mean"] - 1.0) < 1e-12
  alternating = np.stack([signal, -signal] * 4)  # groups of 1: neighbours point opposite ways
  assert abs(gradient_noise.group_cosines(alternating, 1)["mean"] + 1.0) < 1e-12
  noise = rng.normal(size=(64, 5000))
  small, large = (gradient_noise.group_cosines(noise + 0.05 * signal.mean(), n)["mean"] for n in (1, 16))
  assert abs(gradient_noise.group_cosines(noise, 1)["mean"]) < 0.05  # independent noise: ~0
  assert large > small  # averaging more meta-gradients raises the agreement of the means
  assert gradient_noise.group_cosines(noise, 40)["pairs"] == 0  # not two disjoint groups of 40


def test_meta_gradient_noise_on_tiny_tasks(tiny_cfg):
  theta = rule.init_theta(jax.random.PRNGKey(0), tiny_cfg.rule)
  r = gradient_noise.meta_gradient_noise(tiny_cfg, theta, num=4, group_sizes=(1, 2, 4), log=lambda s: None)
  assert r["num"] == 4 and [g["n"] for g in r["group_cosines"]] == [1, 2]
  assert all(-1.0 <= g["mean"] <= 1.0 for g in r["group_cosines"])
  assert np.isfinite(r["descent_along_mixing_weights"]["mean"]) and r["norm_of_mean"] <= r["norm_mean"]
