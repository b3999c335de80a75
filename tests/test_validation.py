"""Meta-validation: the imagenet class split, validation in the trainer, best/ export, resume, plot."""

import json

import numpy as np
import pytest

from meta_unsup_rules.configs import tiny
from meta_unsup_rules.distributed import checkpoint, trainer, validation
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.tasks import datasets as ds
from meta_unsup_rules.tasks import eval_tasks
from meta_unsup_rules.tasks import meta_train as mt
from meta_unsup_rules.util.config_check import ConfigError


def _names(split):
  return set(ds.load_raw("imagenet", split).class_names)


def test_holdout_leaves_validation_classes_out_of_meta_training():
  cfg = tiny.get_config()
  cfg.task.update(dict(datasets=("imagenet",), dataset_weights=(1.0,), validation_holdout=True))
  val_names = _names("val")
  source = mt.meta_train_source("imagenet", cfg.task)
  assert source.num_classes == 120 and not set(source.class_names) & val_names
  assert set(source.class_names) | val_names == _names("train")  # the 160 meta-training classes
  rng = np.random.default_rng(0)
  drawn = set()
  for _ in range(300):
    task = mt.sample_meta_train_task(rng, cfg.task)
    assert task.source is source
    drawn.update(task.class_names)
  assert not drawn & val_names and len(drawn) > 100  # most of the 120, none of the 40
  # imagenet_val: disjoint from the (holdout) meta-training and from the test classes.
  for c in (10, 40):
    val = eval_tasks.make_eval_task("imagenet_val", num_classes=c)
    assert len(set(val.class_names)) == c and set(val.class_names) <= val_names
    assert not set(val.class_names) & set(source.class_names)
    assert not set(val.class_names) & _names("test")
  original = ds.load_raw("imagenet", "val").extra["original_class"]
  assert (original % 5 == 3).all() and len(original) == 40
  # Without the switch the source is the paper's 160 classes.
  cfg.task.validation_holdout = False
  assert mt.meta_train_source("imagenet", cfg.task).num_classes == 160


def test_holdout_leaves_alphabet_validation_characters_out_of_meta_training():
  cfg = tiny.get_config()
  cfg.task.update(dict(datasets=("alphabet",), dataset_weights=(1.0,), validation_holdout=True))
  source = mt.meta_train_source("alphabet", cfg.task)
  val = eval_tasks.make_eval_task("alphabet_val")
  assert val.class_names == tuple("5BHNTZflrx") and source.num_classes == 52
  assert not set(source.class_names) & set(val.class_names)
  # The test part of alphabet_val is drawn from fonts its train part never shows.
  raw = ds.load_raw("alphabet", "val")
  fonts = np.asarray(raw.extra["font"])
  assert len(val.x_test) == int(np.sum(fonts % 4 == 3)) and len(val.x_train) == int(np.sum(fonts % 4 != 3))
  cfg.task.validation_holdout = False
  assert mt.meta_train_source("alphabet", cfg.task).num_classes == 62


def _cfg(every=2, num_updates=4):
  cfg = tiny.get_config()
  cfg.validation.every = every
  cfg.learner.num_updates = num_updates
  return cfg


def _records(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _theta_leaves(theta):
  return export.flatten_tree(theta)


def test_meta_train_validates_and_exports_the_best(tmp_path):
  cfg = _cfg(every=2, num_updates=3)  # validations at 2 and at the last update, 3
  summary = trainer.meta_train(cfg, tmp_path, progress=False)
  records = _records(tmp_path)
  with_val = [r for r in records if "val_accuracy" in r]
  assert [r["step"] for r in with_val] == [2, 3]
  for r in with_val:
    assert r["val_step"] == r["step"] and 0.0 <= r["val_accuracy"] <= 1.0 and r["val_sec"] > 0
    assert r["val_sem"] is None or r["val_sem"] >= 0
  assert [r["meta_grads_total"] for r in records] == [2, 4, 6]
  theta, _, best = export.load_theta(tmp_path / "best")
  accs = [r["val_accuracy"] for r in with_val]
  assert best["updates"] == with_val[int(np.argmax(accs))]["step"]
  assert best["val_accuracy"] == max(accs) and best["validation"]["task"] == "imagenet_val"
  assert best["meta_grads"] == 2 * best["updates"] and best["hours"] > 0
  assert summary["validation_best"]["update"] == best["updates"]
  # best/ holds the θ of that update: the checkpoint of step 2 or the final θ.
  ref = checkpoint.load_path(tmp_path / checkpoint.checkpoint_name(best["updates"]))
  ref_theta, _ = checkpoint.theta_from_payload(ref)
  for k, v in _theta_leaves(ref_theta).items():
    np.testing.assert_array_equal(v, _theta_leaves(theta)[k])


def test_best_survives_resume(tmp_path, monkeypatch):
  scripted = {2: 0.5, 4: 0.7, 6: 0.6, 8: 0.65}  # the best is update 4, before the resume

  def fake_run(self, theta, step):
    return {"val_accuracy": scripted[step], "val_sem": 0.01, "val_step": step, "val_sec": 0.0}

  monkeypatch.setattr(validation.Validator, "run", fake_run)
  cfg = _cfg(every=2, num_updates=8)
  trainer.meta_train(cfg, tmp_path, progress=False, stop_at_step=4)
  assert checkpoint.load_latest(tmp_path)["validation_best"]["update"] == 4
  summary = trainer.meta_train(cfg, tmp_path, progress=False)
  assert summary["resumed_from"] == 4 and summary["validation_best"]["update"] == 4
  _, _, best = export.load_theta(tmp_path / "best")
  assert best["updates"] == 4 and best["val_accuracy"] == 0.7
  logged = {r["step"]: r["val_accuracy"] for r in _records(tmp_path) if "val_accuracy" in r}
  assert logged == scripted
  # A best/ export newer than the checkpoint (an unclean stop) is not replaced by a worse θ.
  assert trainer._resumed_best({"validation_best": {"update": 2, "accuracy": 0.5, "sem": 0.0}}, tmp_path) == {
    "update": 4,
    "accuracy": 0.7,
    "sem": 0.01,
  }


@pytest.mark.parametrize(
  "field,value",
  [
    ("every", -1),
    ("task", "tiny_mnist"),  # a test task
    ("seeds", 0),
    ("inner_steps", -5),
    ("eval_every", 0),
    ("seed", -1),
    ("readout", "nosuch"),
  ],
)
def test_validation_config_checks(field, value):
  from meta_unsup_rules.scripts import config_args

  cfg = _cfg(every=2)
  cfg.validation[field] = value
  with pytest.raises(ConfigError) as info:
    config_args.check_config(cfg, config_args.META_TRAIN_SECTIONS)
  assert info.value.field == f"validation.{field}"


def test_imagenet_val_needs_the_holdout_when_imagenet_is_meta_trained():
  from meta_unsup_rules.distributed import settings

  cfg = _cfg(every=2)
  cfg.task.update(dict(datasets=("imagenet",), dataset_weights=(1.0,)))
  with pytest.raises(ConfigError, match="validation_holdout"):
    settings.validate_validation(cfg)
  cfg.task.validation_holdout = True
  settings.validate_validation(cfg)
  cfg.validation.task = "alphabet_val"
  cfg.task.update(dict(datasets=("alphabet",), dataset_weights=(1.0,), validation_holdout=False))
  with pytest.raises(ConfigError, match="alphabet_val needs task.validation_holdout"):
    settings.validate_validation(cfg)
  cfg.task.validation_holdout = True
  settings.validate_validation(cfg)
  with pytest.raises(ConfigError, match="task.validation_holdout"):
    mt.validate_config({**cfg.task.to_dict(), "validation_holdout": "yes"})


def test_meta_train_script_exits_2_for_a_bad_validation_value(tmp_path):
  import subprocess
  import sys

  workdir = tmp_path / "run"
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.meta_train",
      "--config=configs/tiny.py",
      f"--workdir={workdir}",
      "--config.validation.every=2",
      "--config.validation.task=tiny_mnist",
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "config field validation.task = 'tiny_mnist'" in proc.stderr and not workdir.exists()


def test_plot_training_draws_the_validation_curve(tmp_path):
  from meta_unsup_rules.evaluation import plots

  records = [
    {
      "step": s,
      "meta_loss": 1.0 / s,
      "meta_loss_per_dataset": {"omniglot": 1.0 / s},
      "accuracy": 0.1 * s,
      "grad_norm": 1.0,
      "theta_norm": 2.0,
      "meta_grads_per_sec": 1.0,
      "meta_grads_total": 8 * s,
      "elapsed_sec": 10.0 * s,
      **({"val_accuracy": 0.3 + 0.01 * (s % 7), "val_sem": 0.01, "val_step": s} if s % 2 == 0 else {}),
    }
    for s in range(1, 11)
  ]
  out = tmp_path / "training.png"
  summary = plots.plot_training(records, out, smooth=3)
  assert out.stat().st_size > 0 and summary["val_best"]["update"] == 6
  without = [{k: v for k, v in r.items() if not k.startswith("val_")} for r in records]
  assert "val_best" not in plots.plot_training(without, tmp_path / "plain.png", smooth=3)


def test_resume_refuses_another_validation_holdout():
  """The holdout decides which classes meta-training sees: not a setting a resumed run may change."""
  from meta_unsup_rules.distributed import run_config

  cfg = tiny.get_config()
  cfg.task.update(dict(datasets=("imagenet",), dataset_weights=(1.0,), validation_holdout=True))
  old = tiny.get_config()
  old.task.update(dict(datasets=("imagenet",), dataset_weights=(1.0,)))  # holdout False
  with pytest.raises(run_config.ConfigDrift, match="task.validation_holdout: False → True"):
    run_config.resolve(old.to_json_best_effort(), cfg)
  run_config.resolve(cfg.to_json_best_effort(), cfg)
