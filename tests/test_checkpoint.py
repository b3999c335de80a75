"""Checkpoints: arrays + strict JSON (no pickle), corrupt-newest fallback, old pickles refused."""

import json
import logging
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from meta_unsup_rules.distributed import checkpoint, gradient_estimators, trainer
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.distributed import provenance as run_exports
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.util import trees

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
  return subprocess.run(
    ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=True
  ).stdout


def _committed_checkpoints() -> tuple[str | None, list[str]]:
  """(commit, resumable checkpoints in it): HEAD when the tests are collected, so that a running
  job that prunes its checkpoints from the tree, or commits new ones meanwhile, changes nothing."""
  try:
    commit = _git("rev-parse", "HEAD").strip()
    out = _git("ls-tree", "-r", "--name-only", commit)
  except (OSError, subprocess.SubprocessError):
    return None, []
  return commit, sorted(
    p for p in out.splitlines() if re.fullmatch(r"checkpoint_\d+\.npz", pathlib.PurePath(p).name)
  )


COMMIT, COMMITTED = _committed_checkpoints()


def _strict(text):
  def bad(name):
    raise ValueError(f"{name} is not strict JSON")

  return json.loads(text, parse_constant=bad)


def _same(a, b, where="payload"):
  """Structure, JSON values and arrays (dtype, shape, bits) all equal."""
  if isinstance(a, dict):
    assert isinstance(b, dict) and sorted(a) == sorted(b), where
    for k in a:
      _same(a[k], b[k], f"{where}/{k}")
  elif isinstance(a, (list, tuple)):
    assert isinstance(b, (list, tuple)) and len(a) == len(b), where
    for i, (x, y) in enumerate(zip(a, b)):
      _same(x, y, f"{where}/{i}")
  elif isinstance(a, np.ndarray):
    assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
    assert a.tobytes() == b.tobytes(), where
  else:
    assert a == b and type(a) is type(b), where


def _result(grads, version):
  fields = dict(grads=grads, loss=1.0, metrics={}, theta_version=version, dataset="omniglot", inner_steps=2)
  fields.update(task_step=2, worker_id=0, seconds=0.0, backend="cpu")
  return gradient_estimators.WorkerResult(**fields)


def _learner(cfg, updates=2, seed=0):
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  learner = learner_lib.Learner(cfg.learner.copy_and_resolve_references(), theta)
  rng = np.random.default_rng(seed)
  for _ in range(updates * cfg.learner.batch_size):
    grads = jax.tree_util.tree_map(lambda x: rng.normal(size=np.shape(x)).astype(np.float32), theta)
    learner.accept(_result(grads, learner.step))
    if learner.ready:
      learner.apply()
  return learner


def _worker(cfg):
  """A worker with a drawn task and advanced RNG (no unroll: nothing to compile)."""
  w = worker_lib.TaskWorker(cfg, seed=3)
  w.new_task()
  w.rng.random(5)
  w.steps_done = 2
  return w


def test_round_trip_is_bit_exact_and_the_file_holds_no_pickle(tiny_cfg, tmp_path):
  learner, worker = _learner(tiny_cfg), _worker(tiny_cfg)
  payload = {
    "step": learner.step,
    "learner": learner.get_state(),
    "pool": {"workers": [worker.get_state()], "next": 0},
    "theta_signature": checkpoint.theta_signature(learner.theta),
    "config_json": tiny_cfg.to_json_best_effort(),
    "elapsed_sec": 1.25,
  }
  path = checkpoint.save(tmp_path, payload, keep=2)
  assert path.name == "checkpoint_00000002.npz"
  with np.load(path, allow_pickle=False) as z:  # every member loads without pickle
    members = {k: z[k] for k in z.files}
  meta = _strict(bytes(members.pop("meta.json")).decode("utf-8"))
  assert meta["format"] == checkpoint.FORMAT and meta["payload"]["step"] == 2
  assert all(m.dtype != object for m in members.values())
  assert "learner/theta/compute_h/bn_in/offset" in members
  assert "pool/workers/0/task/permutation" in members

  loaded = checkpoint.load_latest(tmp_path, checkpoint.theta_signature(learner.theta))
  assert loaded.pop("path") == str(path)
  want = json.loads(json.dumps({k: v for k, v in payload.items() if k not in ("learner", "pool")}))
  _same({k: loaded[k] for k in want}, want)
  _same(loaded["learner"], learner.get_state(), "learner")
  _same(loaded["pool"], {"workers": [worker.get_state()], "next": 0}, "pool")

  # Structures rebuilt from code: the restored learner and worker continue identically.
  other = learner_lib.Learner(tiny_cfg.learner, rule.init_theta(jax.random.PRNGKey(9), tiny_cfg.rule))
  other.set_state(loaded["learner"])
  assert jax.tree_util.tree_structure(other.opt_state) == jax.tree_util.tree_structure(learner.opt_state)
  w2 = worker_lib.TaskWorker(tiny_cfg, seed=99)
  w2.set_state(loaded["pool"]["workers"][0])
  assert w2.rng.bit_generator.state == worker.rng.bit_generator.state
  assert w2.task.source is worker.task.source
  structure = jax.tree_util.tree_structure
  assert structure(w2.estimator.state) == structure(worker.estimator.state)
  _same(w2.truncation_batches(2), worker.truncation_batches(2), "batches")
  rng = np.random.default_rng(5)
  g = jax.tree_util.tree_map(lambda x: rng.normal(size=np.shape(x)).astype(np.float32), learner.theta)
  for l in (learner, other):
    for _ in range(tiny_cfg.learner.batch_size):
      l.accept(_result(g, l.step))
    l.apply()
  _same(other.get_state(), learner.get_state(), "after one more update")


def test_a_checkpoint_loads_without_the_modules_that_wrote_it(tiny_cfg, tmp_path, monkeypatch):
  # A pickle names the classes and functions it was made from; this format names none.
  worker = _worker(tiny_cfg)
  checkpoint.save(tmp_path, {"step": 1, "pool": {"workers": [worker.get_state()], "next": 0}}, keep=1)
  for name in ("tasks.meta_train", "tasks", "distributed.worker", "optax"):
    monkeypatch.setitem(sys.modules, name, None)  # importing any of them now fails
  loaded = checkpoint.load_latest(tmp_path)
  assert loaded["pool"]["workers"][0]["task"]["dataset"] == worker.task.dataset


def test_encode_refuses_objects(tiny_cfg):
  task = _worker(tiny_cfg).task
  with pytest.raises(checkpoint.CheckpointError, match="MetaTrainTask"):
    checkpoint.encode({"step": 0, "task": task})
  with pytest.raises(checkpoint.CheckpointError, match="object array"):
    checkpoint.encode({"step": 0, "x": np.array([None, 1])})


def test_another_structure_is_refused_naming_the_leaf(tiny_cfg):
  learner = _learner(tiny_cfg, updates=1)
  state = learner.get_state()
  bad = dict(state["theta"])
  bad["compute_h/bn_in/offset"] = np.zeros(3, np.float32)
  with pytest.raises(checkpoint.CheckpointError, match="compute_h/bn_in/offset.*shape"):
    learner.set_state({**state, "theta": bad})
  bad = {k: v for k, v in state["opt_state"].items() if not k.endswith("/count")}
  with pytest.raises(checkpoint.CheckpointError, match="optimiser state.*missing.*count"):
    learner.set_state({**state, "opt_state": bad})


def _truncate(path, dest):
  data = pathlib.Path(path).read_bytes()
  pathlib.Path(dest).write_bytes(data[: len(data) // 2])
  return pathlib.Path(dest).read_bytes()


def test_corrupt_newest_checkpoint_falls_back_with_a_warning_and_is_kept(tmp_path, caplog):
  for step in (1, 2):
    x = np.random.default_rng(step).normal(size=400).astype(np.float32)  # incompressible
    checkpoint.save(tmp_path, {"step": step, "x": x}, keep=5)
  bad = tmp_path / "checkpoint_00000003.npz"
  bad_bytes = _truncate(tmp_path / "checkpoint_00000002.npz", bad)
  # A zip member whose bytes were flipped: the CRC check catches it.
  flipped = tmp_path / "checkpoint_00000004.npz"
  data = bytearray((tmp_path / "checkpoint_00000002.npz").read_bytes())
  i = data.index(b"PK\x03\x04", 10) - 40  # inside the first member's data
  data[i] ^= 0xFF
  flipped.write_bytes(bytes(data))
  with caplog.at_level(logging.WARNING):
    loaded = checkpoint.load_latest(tmp_path)
  assert loaded["step"] == 2 and loaded["path"].endswith("checkpoint_00000002.npz")
  assert "checkpoint_00000003.npz" in caplog.text and "checkpoint_00000004.npz" in caplog.text
  assert bad.read_bytes() == bad_bytes and flipped.exists()

  # Pruning counts readable checkpoints only: keep=1 keeps the new one and the bad ones.
  checkpoint.save(tmp_path, {"step": 3, "x": np.zeros(3)}, keep=1)  # replaces bad step 3 ...
  assert (tmp_path / "checkpoint_00000003.npz.corrupt").read_bytes() == bad_bytes  # ... kept aside
  names = sorted(p.name for p in tmp_path.iterdir())
  assert names == ["checkpoint_00000003.npz", "checkpoint_00000003.npz.corrupt", "checkpoint_00000004.npz"]
  assert checkpoint.load_latest(tmp_path)["step"] == 3

  # Every checkpoint unreadable: an error, not a silent fresh start.
  (tmp_path / "checkpoint_00000003.npz").write_bytes(b"not a zip")
  with pytest.raises(checkpoint.CheckpointError, match="no readable checkpoint"):
    checkpoint.load_latest(tmp_path)


def test_pruning_never_deletes_the_last_valid_checkpoint(tmp_path):
  checkpoint.save(tmp_path, {"step": 1}, keep=1)
  (tmp_path / "checkpoint_00000009.npz").write_bytes(b"PK\x03\x04 truncated")
  checkpoint.save(tmp_path, {"step": 2}, keep=1)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_00000002.npz", "checkpoint_00000009.npz"]
  assert checkpoint.load_latest(tmp_path)["step"] == 2


@pytest.mark.slow
def test_meta_train_resumes_from_the_newest_valid_checkpoint(tiny_cfg, tmp_path, caplog):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=4, checkpoint_every=1))
  first = trainer.meta_train(cfg, tmp_path, progress=False, stop_at_step=1)
  assert first["step"] == 1
  bad = tmp_path / "checkpoint_00000003.npz"
  bad_bytes = _truncate(tmp_path / "checkpoint_00000001.npz", bad)
  with caplog.at_level(logging.WARNING):
    resumed = trainer.meta_train(cfg, tmp_path, progress=False, stop_at_step=1)
  assert resumed["resumed_from"] == 1 and str(bad) in caplog.text
  assert bad.read_bytes() == bad_bytes
  # The θ export of the newest checkpoint skips the bad one too.
  summary = run_exports.export_checkpoint(tmp_path, tmp_path / "export")
  assert summary["checkpoint"] == "checkpoint_00000001.npz" and summary["updates"] == 1


# ------------------------------------------------------------------ old pickles


def test_a_workdir_of_old_pickle_checkpoints_is_refused_naming_the_converter_commit(tmp_path):
  (tmp_path / "checkpoint_00000001.pkl").write_bytes(b"not read")
  with pytest.raises(checkpoint.CheckpointError, match="no longer supported") as e:
    checkpoint.load_latest(tmp_path)  # never a silent fresh start beside old checkpoints
  assert checkpoint.CONVERTER_COMMIT in str(e.value) and "checkpoint_00000001.pkl" in str(e.value)


def test_the_named_commit_holds_the_converter():
  for path in ("scripts/convert_checkpoints.py", "distributed/legacy_checkpoint.py"):
    proc = subprocess.run(
      ["git", "-C", str(ROOT), "cat-file", "-e", f"{checkpoint.CONVERTER_COMMIT}:{path}"],
      capture_output=True,
      timeout=60,
    )
    if proc.returncode != 0 and b"Not a valid object name" in proc.stderr:
      pytest.skip("the history is not in this checkout (shallow clone)")
    assert proc.returncode == 0, f"{checkpoint.CONVERTER_COMMIT}:{path} missing: {proc.stderr!r}"


def test_no_old_pickle_checkpoints_are_committed():
  assert not sorted(ROOT.glob("checkpoints/**/*.pkl")) and not sorted(ROOT.glob("experiments/**/*.pkl"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p)
def test_every_committed_checkpoint_loads(path):
  blob = subprocess.run(
    ["git", "-C", str(ROOT), "show", f"{COMMIT}:{path}"], capture_output=True, timeout=60, check=True
  )
  payload = checkpoint.decode(blob.stdout, where=path)
  theta, cfg = checkpoint.theta_from_payload({**payload, "path": str(ROOT / path)})
  assert checkpoint.theta_signature(theta) == [tuple((n, tuple(s))) for n, s in payload["theta_signature"]]
  learner = learner_lib.Learner(cfg.learner, theta)
  learner.set_state(payload["learner"])  # the optimiser state fits optax's structure
  assert learner.step == payload["step"] and np.isfinite(trees.global_norm(learner.theta))


def test_checkpoints_holds_releases_only():
  # Resumable state lives beside its run under experiments/; the earlier runs' state was dropped
  # (experiments/earlier/README.md says how to get it back from git history).
  assert not sorted(ROOT.glob("checkpoints/**/checkpoint_*"))
