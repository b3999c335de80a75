"""θ exports: splicing parameter groups of two θ (the collapse diagnostic)."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from learned_update import export, rule

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _two_thetas(cfg):
  return (rule.init_theta(jax.random.PRNGKey(0), cfg.rule),
          rule.init_theta(jax.random.PRNGKey(1), cfg.rule))


def test_splice_takes_exactly_the_named_groups_from_the_donor(tiny_cfg):
  base, donor = _two_thetas(tiny_cfg)
  spliced, taken = export.splice_theta(base, donor, ["forward/merge", "compute_h"])
  names = export.theta_group_paths(base)
  assert taken and set(taken) < set(names)
  assert all(n.startswith(("forward/merge/", "compute_h/")) for n in taken)
  for name, s, b, d in zip(names, *(jax.tree_util.tree_leaves(t) for t in (spliced, base, donor))):
    np.testing.assert_array_equal(s, d if name in taken else b)
  # A prefix matches whole path components only: "forward/merge" is not "forward/mer".
  with pytest.raises(export.ExportError, match="no θ leaf under 'forward/mer'"):
    export.splice_theta(base, donor, ["forward/mer"])


def test_splice_refuses_another_architecture(tiny_cfg):
  base, _ = _two_thetas(tiny_cfg)
  other = tiny_cfg.copy_and_resolve_references()
  other.rule.compute_h_size = 12
  with pytest.raises(export.ExportError, match="different architectures"):
    export.splice_theta(base, rule.init_theta(jax.random.PRNGKey(1), other.rule), ["forward"])


def test_splice_cli_writes_an_export_and_rejects_unknown_groups(tiny_cfg, tmp_path):
  base, donor = _two_thetas(tiny_cfg)
  export.save_theta(tmp_path / "base", base, tiny_cfg, {"updates": 5})
  export.save_theta(tmp_path / "donor", donor, tiny_cfg, {"updates": 3})
  cmd = [sys.executable, "-m", "scripts.splice_theta", f"--base={tmp_path / 'base'}",
         f"--donor={tmp_path / 'donor'}", f"--out={tmp_path / 'out'}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run(cmd + ["--groups=forward"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout.strip().splitlines()[-1])["leaves_from_donor"] > 0
  theta, _, summary = export.load_theta(tmp_path / "out")
  assert summary["updates"] == 5 and summary["spliced"]["groups"] == ["forward"]
  expected, _ = export.splice_theta(base, donor, ["forward"])
  for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(a, b)
  bad = subprocess.run(cmd + ["--groups=nonsense"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert bad.returncode == 2 and "no θ leaf under 'nonsense'" in bad.stderr
