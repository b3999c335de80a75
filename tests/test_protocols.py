"""The linear_probe / semi_supervised protocols (evaluation/protocols.py, runner.py,
scripts.evaluate), with the protonet references they were added for."""

import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from meta_unsup_rules.configs import paper
from meta_unsup_rules.evaluation import outputs, protocols, runner
from meta_unsup_rules.tasks import eval_tasks

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Uneven classes, so that a per-class (not global) fraction is what the counts below check.
TRAIN_PER_CLASS = (200, 300, 100)
LABELS_1PCT, LABELS_10PCT = (2, 3, 1), (20, 30, 10)


def _blobs(rng, counts, dim, spread, centres=None):
  centres = rng.normal(size=(len(counts), dim)) if centres is None else centres
  y = np.repeat(np.arange(len(counts)), counts)
  x = centres[y] + spread * rng.normal(size=(len(y), dim))
  return x.astype(np.float32), y.astype(np.int32), centres


@pytest.fixture(scope="module")
def blob_task():
  """A 3-class, 64-dimensional EvalTask with 600 train (uneven classes) and 150 test examples."""
  rng = np.random.default_rng(0)
  x_tr, y_tr, centres = _blobs(rng, TRAIN_PER_CLASS, 64, 1.5)
  x_te, y_te, _ = _blobs(rng, (50, 50, 50), 64, 1.5, centres)
  return eval_tasks.EvalTask("blobs", 64, 3, ("a", "b", "c"), x_tr, y_tr, x_te, y_te)


# ----------------------------------------------------------------------------- label subsets


def test_labelled_subsets_linear_probe_all_or_capped(blob_task):
  cfg = paper.get_config().evaluation
  cfg.protocol = "linear_probe"
  cfg.probe_max_train = 10_000
  full = protocols.labelled_subsets(blob_task.y_train, cfg, np.random.default_rng(0))
  np.testing.assert_array_equal(full[""], np.arange(600))
  cfg.probe_max_train = 250
  capped = protocols.labelled_subsets(blob_task.y_train, cfg, np.random.default_rng(0))[""]
  assert len(capped) == len(np.unique(capped)) == 250 and capped.max() < 600


def test_labelled_subsets_semi_supervised_stratified_and_nested(blob_task):
  cfg = paper.get_config().evaluation
  cfg.protocol = "semi_supervised"
  subsets = protocols.labelled_subsets(blob_task.y_train, cfg, np.random.default_rng(0))
  assert list(subsets) == ["@1%", "@10%"]
  assert tuple(np.bincount(blob_task.y_train[subsets["@1%"]])) == LABELS_1PCT
  assert tuple(np.bincount(blob_task.y_train[subsets["@10%"]])) == LABELS_10PCT
  assert set(subsets["@1%"]) <= set(subsets["@10%"])
  cfg.label_fractions = (0.1, 0.1)
  with pytest.raises(ValueError, match="distinct"):
    protocols.labelled_subsets(blob_task.y_train, cfg, np.random.default_rng(0))


# ----------------------------------------------------------------------------- end to end


def _run(task, cfg, protocol, methods, monkeypatch, **ecfg):
  """run_evaluation with a spy on the readouts: returns (result, [labels of every fit])."""
  cfg = ml_collections.ConfigDict(cfg.to_dict())  # the fixture is shared by the session
  cfg.evaluation.update(dict(protocol=protocol, **ecfg))
  fits = []
  real = protocols.readout_accuracies

  def spy(f_support, y_support, f_test, y_test, *args, **kw):
    assert len(f_support) == len(y_support) and len(f_test) == len(y_test) == 150
    fits.append(np.asarray(y_support))
    return real(f_support, y_support, f_test, y_test, *args, **kw)

  monkeypatch.setattr(protocols, "readout_accuracies", spy)
  return runner.run_evaluation(runner.EvaluationRun(task, cfg, methods, 2, 1, [0, 1])), fits


def test_linear_probe_end_to_end(blob_task, tiny_cfg, monkeypatch):
  methods = ["random_init", "protonet", "protonet_permuted"]
  result, fits = _run(blob_task, tiny_cfg, "linear_probe", methods, monkeypatch, probe_max_train=250)
  assert result["protocol"] == "linear_probe" and result["readouts"] == list(protocols.READOUTS)
  assert len(fits) == 2 * 3 * len(methods)  # seeds × points × methods, one fit each
  assert all(len(y) == 250 for y in fits)
  for seed in ("0", "1"):
    assert result["per_seed_info"][seed]["num_labels"] == {"ridge": 250, "logistic": 250}
    assert result["per_seed_info"][seed]["protonet"]["episodes"] == 2
  rows = {(r["method"], r["step"], r["readout"]): r for r in result["rows"]}
  assert len(rows) == len(methods) * 3 * 2
  assert all(0.0 <= r["mean"] <= 1.0 and r["sem"] is not None for r in rows.values())
  for readout in protocols.READOUTS:  # one start for every method
    assert rows[("protonet", 0, readout)]["values"] == rows[("random_init", 0, readout)]["values"]


def test_semi_supervised_end_to_end(blob_task, tiny_cfg, monkeypatch, tmp_path):
  result, fits = _run(blob_task, tiny_cfg, "semi_supervised", ["random_init", "pca"], monkeypatch)
  names = ["ridge@1%", "logistic@1%", "ridge@10%", "logistic@10%"]
  assert result["readouts"] == names
  assert len(fits) == 2 * 3 * 2 * 2  # seeds × points × methods × fractions
  assert sorted({tuple(np.bincount(y, minlength=3)) for y in fits}) == sorted({LABELS_1PCT, LABELS_10PCT})
  assert sum(len(y) == 6 for y in fits) == sum(len(y) == 60 for y in fits) == 12
  for seed in ("0", "1"):
    assert result["per_seed_info"][seed]["num_labels"] == {
      "ridge@1%": 6,
      "logistic@1%": 6,
      "ridge@10%": 60,
      "logistic@10%": 60,
    }
  assert {r["readout"] for r in result["rows"]} == set(names)
  assert set(result["final"]["pca"]) == set(names)
  paths = outputs.write_outputs(result, tmp_path)
  assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def _run_cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", "scripts.evaluate", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def test_cli_protonets_semi_supervised(tmp_path):
  out = tmp_path / "eval"
  proc = _run_cli(
    "--config=configs/tiny.py",
    "--task=two_moons",
    "--protocol=semi_supervised",
    "--methods=protonet,protonet_permuted",
    "--label_fractions=0.01,0.1",
    "--inner_steps=2",
    "--eval_every=2",
    "--seeds=1",
    "--max_test=200",
    f"--out_dir={out}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  final = json.loads(proc.stdout.strip().splitlines()[-1])["final"]
  assert set(final) == {"protonet", "protonet_permuted"}
  assert set(final["protonet"]) == {"ridge@1%", "logistic@1%", "ridge@10%", "logistic@10%"}
  info = json.loads((out / "results.json").read_text())["per_seed_info"]["0"]
  # two_moons: 1,000 train examples per class.
  assert info["num_labels"]["ridge@1%"] == 20 and info["num_labels"]["logistic@10%"] == 200
  assert info["protonet"]["episodes"] == 2


@pytest.mark.parametrize(
  "args,needle",
  [  # the flags alias fields: the message names the field
    (("--label_fractions=0,0.1",), "config field evaluation.label_fractions = (0.0, 0.1)"),
    (("--label_fractions=0.1,0.10",), "config field evaluation.label_fractions = (0.1, 0.1)"),
    (("--label_fractions=0.1,x",), "--label_fractions: comma-separated numbers"),
    (("--probe_max_train=0",), "config field evaluation.probe_max_train = 0"),
  ],
)
def test_cli_bad_protocol_settings_exit_2(args, needle):
  proc = _run_cli(*args, timeout=120)
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert needle in proc.stderr
