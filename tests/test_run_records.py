"""Run records (commit, versions, command line) in every result file; TensorBoard event files."""

import json
import pathlib
import subprocess

import pytest

from meta_unsup_rules.distributed import trainer
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.util import run_record, tensorboard

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_run_record_names_this_checkout_and_the_packages():
  run_record.git_state.cache_clear()  # read once per process: a commit made since would not show
  record = run_record.run_record()
  head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
  if head.returncode == 0:
    assert record["commit"] == head.stdout.strip() and isinstance(record["dirty"], bool)
  assert set(record["versions"]) == {"python", *run_record.PACKAGES}
  assert record["versions"]["numpy"] and record["versions"]["jax"]
  assert "pytest" in record["command"]


def test_run_record_outside_a_checkout_is_null(tmp_path, monkeypatch):
  monkeypatch.setattr(run_record, "_ROOT", tmp_path)
  run_record.git_state.cache_clear()
  try:
    record = run_record.run_record()
  finally:
    run_record.git_state.cache_clear()
  assert record["commit"] is None and record["dirty"] is None
  assert record["versions"]["numpy"]


def test_metrics_records_become_grouped_scalars():
  scalars = tensorboard.record_scalars(
    {
      "step": 3,
      "meta_loss": 0.5,
      "meta_loss_per_dataset": {"omniglot": 0.4, "mnist": None},
      "grad_norm": float("nan"),
      "theta_norm": 2.0,
      "val_accuracy": 0.7,
      "meta_grads_per_sec": 1.5,
      "lr": 1e-3,
      "note": "text",
    }
  )
  assert scalars == {
    "meta_loss/overall": 0.5,
    "meta_loss/omniglot": 0.4,
    "norms/theta": 2.0,
    "validation/accuracy": 0.7,
    "throughput/meta_grads_per_sec": 1.5,
    "train/lr": 1e-3,
  }


def test_evaluation_curves_are_one_run_per_method(tmp_path):
  rows = [
    {"method": m, "step": s, "readout": "ridge", "mean": a}
    for m, curve in {"learned": (0.3, 0.6), "random_init": (0.3, 0.4)}.items()
    for s, a in zip((0, 10), curve)
  ]
  tensorboard.write_curves(tmp_path, rows)
  tensorboard.write_curves(tmp_path, rows)  # a re-run replaces the curves, as results.json
  learned = tensorboard.read_scalars(tmp_path / "learned")
  assert [(s, round(v, 4)) for s, v in learned["accuracy/ridge"]] == [(0, 0.3), (10, 0.6)]
  assert [s for s, _ in tensorboard.read_scalars(tmp_path / "random_init")["accuracy/ridge"]] == [0, 10]


@pytest.mark.slow
def test_tiny_meta_training_writes_records_and_event_files(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.learner.num_updates = 2
  trainer.meta_train(cfg, tmp_path, progress=False)

  scalars = tensorboard.read_scalars(tmp_path)
  assert [s for s, _ in scalars["meta_loss/overall"]] == [1, 2]
  for tag in ("meta_loss/omniglot", "norms/grad", "norms/theta", "throughput/meta_grads_per_sec", "train/lr"):
    assert len(scalars[tag]) == 2, tag
  metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [round(v, 4) for _, v in scalars["meta_loss/overall"]] == [round(r["meta_loss"], 4) for r in metrics]

  head = run_record.git_state()[0]
  theta_dir = tmp_path / "theta"
  for path in (tmp_path / "config.json", theta_dir / "config.json", theta_dir / "summary.json"):
    record = json.loads(path.read_text())[run_record.RECORD_KEY]
    assert record["commit"] == head and "pytest" in record["command"], path
    assert record["versions"]["jax"] and record["versions"]["optax"], path
  # A reader builds the config from config.json without the record.
  _, loaded_cfg, summary = export.load_theta(tmp_path / "theta")
  assert run_record.RECORD_KEY not in loaded_cfg and run_record.RECORD_KEY in summary
  assert loaded_cfg.rule.to_dict() == cfg.rule.to_dict()
