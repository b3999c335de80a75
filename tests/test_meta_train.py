"""Meta-training end to end (in-process): exact resume, learning, refusal, CLI."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.distributed import checkpoint, run_outputs, trainer
from meta_unsup_rules.distributed import learner as learner_lib
from meta_unsup_rules.distributed import provenance as lineage
from meta_unsup_rules.distributed import provenance as run_exports
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import export, rule, unroll
from meta_unsup_rules.tasks import meta_train
from meta_unsup_rules.util import run_record, trees

pytestmark = pytest.mark.slow


def _tree_equal(a, b):
  """Leaf by leaf, by path: a checkpoint holds θ as leaves keyed by slash path."""
  flat = lambda t: t if all(isinstance(v, np.ndarray) for v in t.values()) else checkpoint.flatten(t)
  fa, fb = flat(a), flat(b)
  assert sorted(fa) == sorted(fb)
  for k in fa:
    np.testing.assert_array_equal(np.asarray(fa[k]), np.asarray(fb[k]), err_msg=k)


def test_resume_reproduces_an_uninterrupted_run(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.num_updates = 4
  cfg.learner.checkpoint_every = 100  # only the stop and the final checkpoint
  straight = trainer.meta_train(cfg, tmp_path / "straight", progress=False)
  cfg.learner.snapshot_every = 2  # must not change the run
  first = trainer.meta_train(cfg, tmp_path / "killed", progress=False, stop_at_step=2)
  assert first["step"] == 2 and first["resumed_from"] is None
  resumed = trainer.meta_train(cfg, tmp_path / "killed", progress=False)
  assert resumed["resumed_from"] == 2 and resumed["step"] == straight["step"] == 4
  a = checkpoint.load_latest(tmp_path / "straight")["learner"]
  b = checkpoint.load_latest(tmp_path / "killed")["learner"]
  assert a["step"] == b["step"] == 4
  _tree_equal(a["theta"], b["theta"])
  _tree_equal(a["opt_state"], b["opt_state"])
  lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(l)["step"] for l in lines] == [1, 2, 3, 4]

  # The θ export of the stop checkpoint (step 2) holds that checkpoint's θ and counts.
  summary = run_exports.export_checkpoint(tmp_path / "killed", tmp_path / "export", step=2)
  exported, exported_cfg, saved_summary = export.load_theta(tmp_path / "export")
  stopped = checkpoint.load_path(tmp_path / "killed" / "checkpoint_00000002.npz")["learner"]
  _tree_equal(exported, stopped["theta"])
  assert exported_cfg.rule.to_dict() == cfg.rule.to_dict()
  assert run_record.without_record(saved_summary) == summary and summary["updates"] == 2
  assert summary["meta_grads"] == 2 * cfg.learner.batch_size
  # Snapshots every 2 updates, across the stop: the θ of that update, with its count.
  snapshots = sorted(p.name for p in (tmp_path / "killed" / "snapshots").iterdir())
  assert snapshots == ["step_00000002", "step_00000004"]
  snap, _, snap_summary = export.load_theta(tmp_path / "killed" / "snapshots" / "step_00000002")
  _tree_equal(snap, stopped["theta"])
  assert snap_summary["updates"] == 2 and snap_summary["meta_grads"] == summary["meta_grads"]
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint of step 3"):
    run_exports.export_checkpoint(tmp_path / "killed", tmp_path / "export3", step=3)


def test_workdir_with_another_theta_architecture_is_refused(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  checkpoint.save(tmp_path, {"step": 1, "theta_signature": checkpoint.theta_signature(theta)}, keep=3)
  before = sorted(p.name for p in tmp_path.iterdir())
  cfg.rule.compute_h_size = 12
  with pytest.raises(checkpoint.CheckpointError, match="another architecture"):
    trainer.meta_train(cfg, tmp_path, progress=False)
  assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_init_theta_starts_a_new_run_from_an_export_and_resume_ignores_it(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  start = jax.tree_util.tree_map(
    lambda x: np.asarray(x) + 0.5, rule.init_theta(jax.random.PRNGKey(7), cfg.rule)
  )
  clean = {"track": "paper", "lineage": [lineage.run_entry("earlier", "configs/tiny.py", 3, True, [])]}
  export.save_theta(tmp_path / "start", start, cfg, clean)
  cfg.learner.init_theta = str(tmp_path / "start")
  cfg.learner.num_updates = 2
  trainer.meta_train(cfg, tmp_path / "run", progress=False, stop_at_step=0)
  _tree_equal(checkpoint.load_latest(tmp_path / "run")["learner"]["theta"], start)
  first = trainer.meta_train(cfg, tmp_path / "run", progress=False, stop_at_step=1)
  assert first["resumed_from"] == 0 and first["step"] == 1
  after_one = checkpoint.load_latest(tmp_path / "run")["learner"]["theta"]
  # Resuming (init_theta still set) continues the checkpoint's θ, not the export's.
  resumed = trainer.meta_train(cfg, tmp_path / "run", progress=False, stop_at_step=1)
  assert resumed["resumed_from"] == 1
  _tree_equal(checkpoint.load_latest(tmp_path / "run")["learner"]["theta"], after_one)
  norms = [json.loads(l)["theta_norm"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  assert norms == [pytest.approx(trees.global_norm(after_one))]


def test_init_theta_of_another_architecture_is_refused(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  export.save_theta(tmp_path / "start", rule.init_theta(jax.random.PRNGKey(0), cfg.rule), cfg)
  cfg.rule.compute_h_size = 12
  cfg.learner.init_theta = str(tmp_path / "start")
  with pytest.raises(export.ExportError, match="learner.init_theta"):
    trainer.meta_train(cfg, tmp_path / "run", progress=False)
  assert (
    not (tmp_path / "run" / "metrics.jsonl").exists() or not (tmp_path / "run" / "metrics.jsonl").read_text()
  )


def _held_out(cfg, num_tasks=6, k=4):
  rng = np.random.default_rng(123)
  held = []
  for i in range(num_tasks):
    task = meta_train.sample_meta_train_task(rng, cfg.task)
    state = base_models.init(
      jax.random.PRNGKey(100 + i),
      task.input_dim,
      task.layer_widths,
      cfg.base_model,
      permutation=task.permutation,
    )
    worker = worker_lib.TaskWorker(cfg, seed=0)
    worker.task, worker.rng = task, rng
    held.append((task, state, worker.truncation_batches(k)))
  fns = unroll.make_unroll_fns(cfg)
  return lambda theta: float(
    np.mean([fns.unroll_loss(theta, s, b, num_classes=t.num_classes)[0] for t, s, b in held])
  )


def test_meta_training_lowers_the_held_out_meta_objective(tiny_cfg):
  # A larger inner step than the paper's makes a 4-step unroll move the base model,
  # so a few dozen updates show whether meta-gradients point downhill.
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.rule.inner_lr = 0.1
  cfg.unroll.update(dict(lengths=(4,), horizon_min=4, horizon_max=8))
  cfg.learner.update(dict(batch_size=8, num_updates=100, learning_rates=(1e-2,) * 3, max_staleness=0))
  held_out = _held_out(cfg)
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  learner = learner_lib.Learner(cfg.learner, theta)  # tbptt: the plain mean
  worker = worker_lib.TaskWorker(cfg, seed=2)
  while learner.step < cfg.learner.num_updates:
    learner.accept(worker.compute_gradient(learner.theta, learner.step))
    if learner.ready:
      learner.apply()
  before, after = held_out(theta), held_out(learner.theta)
  assert after < before - 0.02, (before, after)  # measured: 0.796 -> 0.694


def test_cli_finishes_then_resumes_with_a_larger_budget(tmp_path):
  cmd = [
    sys.executable,
    "-m",
    "scripts.meta_train",
    "--config=configs/tiny.py",
    f"--workdir={tmp_path}",
    "--no_progress",
    "--config.learner.num_updates=2",
  ]
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  first = json.loads(out.stdout.strip().splitlines()[-1])
  assert first["step"] == 2 and first["resumed_from"] is None
  for key in ("meta_loss", "meta_grads_per_sec"):
    assert np.isfinite(first[key])
  cmd[-1] = "--config.learner.num_updates=3"
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  second = json.loads(out.stdout.strip().splitlines()[-1])
  assert second["step"] == 3 and second["resumed_from"] == 2
  assert (tmp_path / "theta" / "theta.npz").is_file()


def test_cli_bad_input_exits_2(tmp_path):
  out = subprocess.run(
    [sys.executable, "-m", "scripts.meta_train", "--config=configs/tiny.py"],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 2 and "--workdir" in out.stderr


def test_cli_unknown_meta_objective_targets_exit_2(tmp_path):
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.meta_train",
      "--config=configs/tiny.py",
      f"--workdir={tmp_path}",
      "--config.meta_objective.targets=augmentation",
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 2 and "meta_objective.targets" in out.stderr
  assert not any(tmp_path.iterdir())  # nothing written


def test_worker_counters_survive_a_resume_and_a_changed_worker_count_is_reported(
  tiny_cfg, tmp_path, caplog, monkeypatch
):
  from tests.test_worker_faults import faults

  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=3, checkpoint_every=100))
  faults(monkeypatch, "raise_once")  # each new process's (here: pool's) workers raise once
  first = trainer.meta_train(cfg, tmp_path, progress=False, stop_at_step=1)
  assert first["worker_errors"] == 1
  cfg.workers.num_workers = 2
  with caplog.at_level("WARNING"):
    resumed = trainer.meta_train(cfg, tmp_path, progress=False)
  assert resumed["resumed_from"] == 1
  # 1 before the stop + 1 per worker of the resumed pool: the count goes on, it does not restart.
  assert resumed["worker_errors"] == 3
  records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["worker_errors"] for r in records] == [1, 3, 3]
  assert any("resuming 2 in-process workers from a checkpoint of 1" in r.getMessage() for r in caplog.records)


def test_init_theta_with_other_rule_settings_is_refused_and_the_same_settings_start(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  clean = {"track": "paper", "lineage": [lineage.run_entry("earlier", "configs/tiny.py", 3, True, [])]}
  exported = cfg.copy_and_resolve_references()
  exported.rule.inner_lr = 0.1
  export.save_theta(tmp_path / "start", rule.init_theta(jax.random.PRNGKey(7), cfg.rule), exported, clean)
  cfg.learner.init_theta = str(tmp_path / "start")
  with pytest.raises(export.ExportError, match=f"rule.inner_lr 0.1 there, {cfg.rule.inner_lr!r} here"):
    trainer.meta_train(cfg, tmp_path / "run", progress=False, stop_at_step=0)
  # The same settings start; a field that only chooses the implementation does not count.
  same = cfg.copy_and_resolve_references()
  same.rule.implementation = "fused" if cfg.rule.get("implementation") == "reference" else "reference"
  export.save_theta(tmp_path / "same", rule.init_theta(jax.random.PRNGKey(7), cfg.rule), same, clean)
  cfg.learner.init_theta = str(tmp_path / "same")
  trainer.meta_train(cfg, tmp_path / "run2", progress=False, stop_at_step=0)
  assert (tmp_path / "run2" / "theta" / "summary.json").is_file()


def test_resume_drops_the_records_logged_after_the_last_checkpoint(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"step": s, "meta_loss": 0.5}) + "\n" for s in range(1, 8)))
  run_outputs._drop_records_after(path, 5)  # pylint: disable=protected-access
  assert [json.loads(l)["step"] for l in path.read_text().splitlines()] == [1, 2, 3, 4, 5]
  run_outputs._drop_records_after(tmp_path / "none.jsonl", 5)  # no file: nothing to do


def test_checkpoints_without_worker_tasks_keep_the_rngs_and_resume_on_new_staggered_tasks(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.update(dict(num_updates=3, checkpoint_every=100, checkpoint_worker_tasks=False))
  cfg.unroll.stagger_first_task = True
  trainer.meta_train(cfg, tmp_path, progress=False, stop_at_step=2)
  saved = checkpoint.load_latest(tmp_path)
  (w,) = saved["pool"]["workers"]
  assert w["task"] is None and w["state"] is None and w["tasks_started"] == 0
  # The RNG is where the interrupted worker's had got to, not a fresh worker's.
  fresh = worker_lib.TaskWorker(cfg, cfg.seed, 0)
  position = lambda state: int(np.asarray(state["state"]["state"]))
  assert position(w["rng"]) != position(fresh.rng.bit_generator.state)
  restored = worker_lib.TaskWorker(cfg, cfg.seed, 0)
  restored.set_state(w)
  theta = rule.init_theta(jax.random.PRNGKey(cfg.seed), cfg.rule)
  restored.compute_gradient(theta, 2)
  fresh.compute_gradient(theta, 0)
  assert restored.tasks_started == 1  # its first task after the resume: staggered like one
  restored_state, fresh_state = restored.estimator.state, fresh.estimator.state
  assert checkpoint.flatten(restored_state).keys() == checkpoint.flatten(fresh_state).keys()
  assert not all(
    np.array_equal(a, b)
    for a, b in zip(checkpoint.flatten(restored_state).values(), checkpoint.flatten(fresh_state).values())
  )  # another task's base model, not the one a fresh worker starts with
  resumed = trainer.meta_train(cfg, tmp_path, progress=False)
  assert resumed["resumed_from"] == 2 and resumed["step"] == 3


def test_a_branched_run_names_its_parent_and_update_in_its_lineage(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.task.validation_holdout = True  # a clean parent: a branch inherits its lineage
  cfg.learner.update(dict(num_updates=2, checkpoint_every=1, keep_checkpoints=5))
  trainer.meta_train(cfg, tmp_path / "parent", progress=False, config_source="configs/tiny.py")
  child_cfg = cfg.copy_and_resolve_references()
  child_cfg.learner.update(dict(branch_from=str(tmp_path / "parent"), branch_update=1, num_updates=3))
  summary = trainer.meta_train(child_cfg, tmp_path / "child", progress=False, config_source="child")
  assert summary["step"] == 3 and summary["resumed_from"] is None
  steps = [json.loads(l)["step"] for l in (tmp_path / "child" / "metrics.jsonl").read_text().splitlines()]
  assert steps == [2, 3]  # the update count goes on from the parent's checkpoint of update 1
  _, _, exported = export.load_theta(tmp_path / "child" / "theta")
  parent_entry, child_entry = exported["lineage"]
  assert parent_entry["run"].endswith("parent") and parent_entry["update"] == 1
  assert child_entry["start"] == parent_entry["run"] and child_entry["update"] == 3
  assert child_entry["branch"] == {"run": parent_entry["run"], "update": 1, "optimizer": "restored"}
  assert exported["track"] == "paper" and not lineage.problems(exported)
  # Another optimiser structure: θ and the count come along, Adam starts afresh, and the record says so.
  fresh_cfg = child_cfg.copy_and_resolve_references()
  fresh_cfg.learner.mixing_lr_multiplier = 3.0
  trainer.meta_train(fresh_cfg, tmp_path / "fresh", progress=False)
  _, _, fresh = export.load_theta(tmp_path / "fresh" / "theta")
  assert fresh["lineage"][-1]["branch"]["optimizer"] == "fresh" and fresh["track"] == "paper"
  # A resumed branch keeps its origin: the parent is not re-read.
  again = trainer.meta_train(child_cfg, tmp_path / "child", progress=False)
  assert again["resumed_from"] == 3
  # A missing update is refused with the updates the parent has.
  bad = child_cfg.copy_and_resolve_references()
  bad.learner.branch_update = 7
  with pytest.raises(checkpoint.CheckpointError, match="has no checkpoint of update 7"):
    trainer.meta_train(bad, tmp_path / "bad", progress=False)
