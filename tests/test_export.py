"""θ exports: strict reading (ExportError for any damage), committed exports, splicing."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.tools import theta_surgery
from meta_unsup_rules.learned_update import export, rule
from meta_unsup_rules.util import run_record

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _two_thetas(cfg):
  return (rule.init_theta(jax.random.PRNGKey(0), cfg.rule), rule.init_theta(jax.random.PRNGKey(1), cfg.rule))


def test_splice_takes_exactly_the_named_groups_from_the_donor(tiny_cfg):
  base, donor = _two_thetas(tiny_cfg)
  spliced, taken = theta_surgery.splice_theta(base, donor, ["forward/merge", "compute_h"])
  names = theta_surgery.theta_group_paths(base)
  assert taken and set(taken) < set(names)
  assert all(n.startswith(("forward/merge/", "compute_h/")) for n in taken)
  for name, s, b, d in zip(names, *(jax.tree_util.tree_leaves(t) for t in (spliced, base, donor))):
    np.testing.assert_array_equal(s, d if name in taken else b)
  # A prefix matches whole path components only: "forward/merge" is not "forward/mer".
  with pytest.raises(export.ExportError, match="no θ leaf under 'forward/mer'"):
    theta_surgery.splice_theta(base, donor, ["forward/mer"])


def test_splice_refuses_another_architecture(tiny_cfg):
  base, _ = _two_thetas(tiny_cfg)
  other = tiny_cfg.copy_and_resolve_references()
  other.rule.compute_h_size = 12
  with pytest.raises(export.ExportError, match="different architectures"):
    theta_surgery.splice_theta(base, rule.init_theta(jax.random.PRNGKey(1), other.rule), ["forward"])


def test_splice_cli_writes_an_export_and_rejects_unknown_groups(tiny_cfg, tmp_path):
  base, donor = _two_thetas(tiny_cfg)
  export.save_theta(tmp_path / "base", base, tiny_cfg, {"updates": 5})
  export.save_theta(tmp_path / "donor", donor, tiny_cfg, {"updates": 3})
  cmd = [
    sys.executable,
    "-m",
    "experiments.tools.splice_theta",
    f"--base={tmp_path / 'base'}",
    f"--donor={tmp_path / 'donor'}",
    f"--out={tmp_path / 'out'}",
  ]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run(cmd + ["--groups=forward"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout.strip().splitlines()[-1])["leaves_from_donor"] > 0
  theta, _, summary = export.load_theta(tmp_path / "out")
  assert summary["updates"] == 5 and summary["spliced"]["groups"] == ["forward"]
  expected, _ = theta_surgery.splice_theta(base, donor, ["forward"])
  for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(a, b)
  bad = subprocess.run(cmd + ["--groups=nonsense"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert bad.returncode == 2 and "no θ leaf under 'nonsense'" in bad.stderr
  # --scale instead of --donor multiplies the named groups, nothing else.
  scaled_cmd = [c for c in cmd if not c.startswith("--donor")] + ["--groups=forward/merge", "--scale=2.5"]
  out = subprocess.run(scaled_cmd, cwd=ROOT, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  theta, _, summary = export.load_theta(tmp_path / "out")
  assert summary["spliced"]["scale"] == 2.5
  leaves = (jax.tree_util.tree_leaves(t) for t in (theta, base))
  for name, a, b in zip(theta_surgery.theta_group_paths(base), *leaves):
    np.testing.assert_allclose(a, 2.5 * b if name.startswith("forward/merge/") else b, rtol=1e-6)
  donor_too = scaled_cmd + [f"--donor={tmp_path / 'donor'}"]
  both = subprocess.run(donor_too, cwd=ROOT, env=env, capture_output=True)
  assert both.returncode == 2


def test_hand_mixing_sets_only_the_merges_and_the_cli_writes_it(tiny_cfg, tmp_path):
  base, _ = _two_thetas(tiny_cfg)
  hand = theta_surgery.with_hand_mixing(base, {"hebb": 1.0, "decorr_x": -0.5})
  for name, a, b in zip(
    theta_surgery.theta_group_paths(base), *(jax.tree_util.tree_leaves(t) for t in (hand, base))
  ):
    if name.endswith("merge/w"):
      expected = np.zeros(len(rule.WEIGHT_TERMS), np.float32)
      expected[rule.WEIGHT_TERMS.index("hebb")] = 1.0
      expected[rule.WEIGHT_TERMS.index("decorr_x")] = -0.5
      np.testing.assert_array_equal(a, expected)
    elif name.endswith("merge/b"):
      assert float(a) == 0.0
    else:
      np.testing.assert_array_equal(a, b)
  with pytest.raises(export.ExportError, match="unknown ΔW terms \\['heb'\\]"):
    theta_surgery.with_hand_mixing(base, {"heb": 1.0})
  export.save_theta(tmp_path / "base", base, tiny_cfg, {"updates": 5})
  cmd = [
    sys.executable,
    "-m",
    "experiments.tools.hand_rule_theta",
    f"--base={tmp_path / 'base'}",
    f"--out={tmp_path / 'out'}",
  ]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run(
    cmd + ["--mixing=hebb=1", "--inner_lr=0.002", "--hebb_term=oja_centred"],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  theta, cfg, summary = export.load_theta(tmp_path / "out")
  assert (
    cfg.rule.inner_lr == 0.002 and summary["updates"] == 0 and summary["hand_rule"]["mixing"] == {"hebb": 1.0}
  )
  assert cfg.rule.hebb_term == summary["hand_rule"]["hebb_term"] == "oja_centred"
  merge = theta["forward"]["merge"]["w"]
  assert merge[rule.WEIGHT_TERMS.index("hebb")] == 1.0 and np.count_nonzero(merge) == 1
  for bad in (
    ["--mixing=hebb"],
    ["--mixing=hebb=x"],
    ["--mixing=heb=1"],
    ["--mixing=hebb=1", "--inner_lr=0"],
    ["--mixing=hebb=1", "--hebb_term=oja2"],
  ):
    run = subprocess.run(cmd + bad, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 2, (bad, run.stderr[-500:])


# --------------------------------------------------------------- damaged exports


@pytest.fixture()
def good_export(tiny_cfg, tmp_path):
  theta, _ = _two_thetas(tiny_cfg)
  return export.save_theta(tmp_path / "good", theta, tiny_cfg, {"updates": 3, "loss": float("nan")})


def test_an_export_round_trips_with_strict_json(good_export):
  theta, cfg, summary = export.load_theta(good_export)
  assert run_record.without_record(summary) == {"updates": 3, "loss": None}  # NaN is null (strict JSON)
  assert summary[run_record.RECORD_KEY]["versions"]["jax"]
  assert json.loads((good_export / "summary.json").read_text()) == summary
  assert cfg.rule.compute_h_size > 0 and jax.tree_util.tree_leaves(theta)


def _damage(directory, name, data: bytes):
  (directory / name).write_bytes(data)


@pytest.mark.parametrize(
  "name,data,match",
  [
    ("theta.npz", None, r"theta.npz: BadZipFile.*truncated or partial"),
    ("theta.npz", b"", r"theta.npz: .*expected an .npz archive"),
    ("theta.npz", b"garbage, not a zip", r"theta.npz: .*expected an .npz archive"),
    ("config.json", b"{\"rule\": {", r"config.json: JSONDecodeError.*must be a JSON object"),
    ("config.json", b"\xff\xfe\x00", r"config.json: UnicodeDecodeError"),
    ("config.json", b"[1, 2]", r"config.json holds a JSON list"),
    ("config.json", b"{}", r"config.json does not describe a rule"),
    ("summary.json", b"{\"updates\": 3", r"summary.json: JSONDecodeError"),
    ("summary.json", b"null", r"summary.json holds a JSON NoneType"),
  ],
)
def test_a_damaged_export_raises_export_error(good_export, name, data, match):
  if data is None:  # a partial copy: the first half of the archive
    data = (good_export / name).read_bytes()[: (good_export / name).stat().st_size // 2]
  _damage(good_export, name, data)
  with pytest.raises(export.ExportError, match=match):
    export.load_theta(good_export)


def test_an_export_with_pickled_or_missing_leaves_raises_export_error(good_export):
  flat = dict(np.load(good_export / "theta.npz"))
  name = sorted(flat)[0]
  np.savez(good_export / "theta.npz", **{**flat, name: np.array([object()], dtype=object)})
  with pytest.raises(export.ExportError, match="without pickled objects"):
    export.load_theta(good_export)
  del flat[name]
  np.savez(good_export / "theta.npz", **flat)
  with pytest.raises(export.ExportError, match="missing"):
    export.load_theta(good_export)


def test_evaluate_exits_2_on_a_truncated_export(good_export):
  data = (good_export / "theta.npz").read_bytes()
  _damage(good_export, "theta.npz", data[: len(data) // 2])
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.evaluate",
      f"--theta={good_export}",
      "--task=tiny_mnist",
      "--inner_steps=1",
      "--seeds=1",
      "--methods=learned",
    ],
    cwd=ROOT,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert out.returncode == 2, out.stderr[-2000:]
  assert "theta.npz" in out.stderr and "BadZipFile" in out.stderr and "Traceback" not in out.stderr


# ------------------------------------------------------------ committed exports


EXPORT_ROOTS = (
  "checkpoints",
  "experiments/earlier/thetas",
  "experiments/earlier/runs",
)  # releases, earlier θs


def _committed_exports():
  dirs = set()
  for root in EXPORT_ROOTS:
    dirs |= {p.parent for p in ROOT.glob(f"{root}/*/theta.npz")}
    dirs |= {p.parent for p in ROOT.glob(f"{root}/*/theta/theta.npz")}
    dirs |= {p.parent for p in ROOT.glob(f"{root}/*/best/theta.npz")}
    dirs |= {p.parent for p in ROOT.glob(f"{root}/*/snapshots/*/theta.npz")}
  return sorted(dirs)


def test_the_committed_exports_are_found():
  names = {str(p.relative_to(ROOT)) for p in _committed_exports()}
  assert {
    "checkpoints/paper_track_u1200",
    "checkpoints/ojac_clean_u50",
    "checkpoints/ojac_hand_clean",
    "experiments/earlier/thetas/local",
    "experiments/earlier/thetas/local_u236",
    "experiments/earlier/thetas/local_u1331",
    "experiments/earlier/runs/local_run/snapshots/step_00001331",
    "experiments/earlier/runs/local_labels_run/theta",
  } <= names


@pytest.mark.parametrize("directory", _committed_exports(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_export_loads(directory):
  theta, cfg, summary = export.load_theta(directory)
  assert cfg.rule and all(np.all(np.isfinite(l)) for l in jax.tree_util.tree_leaves(theta))
  assert summary is None or isinstance(summary, dict)
