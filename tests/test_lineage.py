"""Lineage as data: every θ export says its track and every run it came from; shipped θs are clean."""

import json
import pathlib
import runpy

import jax
import numpy as np
import pytest

from meta_unsup_rules.distributed import provenance as lineage
from meta_unsup_rules.distributed import trainer
from meta_unsup_rules.learned_update import export, rule

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _entry(run, start, holdout=True, selected=None):
  return {
    "run": run,
    "config": "configs/x.py",
    "commit": "abc",
    "update": 10,
    "validation_holdout": holdout,
    "start": start,
    "selected_on": selected,
  }


def test_clean_lineage_has_no_problems():
  summary = {
    "track": "paper",
    "lineage": [
      _entry("a", "untrained", selected={"task": "alphabet_val", "seeds": [1000, 1009]}),
      _entry("b", "a"),
    ],
  }
  assert lineage.problems(summary) == []


@pytest.mark.parametrize("task", lineage.TEST_TASKS)
def test_an_ancestor_selected_on_a_test_task_taints_the_theta(task):
  summary = {
    "track": "paper",
    "lineage": [_entry("a", "untrained", selected={"task": task, "seeds": [0, 2]}), _entry("b", "a")],
  }
  (problem,) = lineage.problems(summary)
  assert "lineage[0]" in problem and task in problem


def test_an_ancestor_without_the_holdout_or_a_broken_chain_taints_the_theta():
  assert (
    "without the validation holdout"
    in lineage.problems({"track": "extension", "lineage": [_entry("a", "untrained", holdout=False)]})[0]
  )
  assert "starts from" in lineage.problems({"track": "paper", "lineage": [_entry("a", "somewhere")]})[0]
  assert lineage.problems({"updates": 3}) and lineage.problems(None)


def test_config_track():
  from meta_unsup_rules.configs import local, oja, paper_track

  assert lineage.config_track(paper_track.get_config()) == "paper"
  assert lineage.config_track(local.get_config()) == "paper"
  assert lineage.config_track(oja.get_config()) == "extension"
  pes = paper_track.get_config()
  pes.unroll.estimator = "pes"
  assert lineage.config_track(pes) == "extension"
  assert lineage.combined_track("paper", [_entry("a", "untrained")], "extension") == "extension"
  assert lineage.combined_track("paper", [], None) == "paper"


def _exports():
  """The releases: checkpoints/ holds nothing else."""
  return sorted(p.parent for p in (ROOT / "checkpoints").glob("*/theta.npz"))


def _earlier_exports():
  """The θs of earlier studies (tainted comparators the earlier tables cite), by path only."""
  return sorted(p.parent for p in (ROOT / "experiments" / "earlier" / "thetas").glob("*/theta.npz"))


@pytest.mark.parametrize("directory", _exports() + _earlier_exports(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_theta_export_states_its_track_and_a_readable_lineage(directory):
  summary = json.loads((directory / "summary.json").read_text())
  assert summary["track"] in lineage.TRACKS
  assert isinstance(summary["release"], bool)
  assert summary["lineage"], "no lineage"
  for problem in lineage.problems(summary):  # a comparator may be tainted, never unreadable
    assert "validation holdout" in problem or "test task" in problem, problem


@pytest.mark.parametrize("directory", _exports(), ids=lambda p: p.name)
def test_every_theta_in_checkpoints_is_a_release_with_a_clean_lineage(directory):
  summary = json.loads((directory / "summary.json").read_text())
  assert summary["release"] is True, f"{directory.name}: checkpoints/ holds releases only"
  assert lineage.problems(summary) == []


@pytest.mark.parametrize("directory", _earlier_exports(), ids=lambda p: p.name)
def test_every_earlier_theta_is_tainted_and_not_a_release(directory):
  summary = json.loads((directory / "summary.json").read_text())
  assert summary["release"] is False and lineage.problems(summary)


def test_the_exports_are_found():
  assert {p.name for p in _exports()} >= {"paper_track_u1200", "ojac_clean_u50", "ojac_hand_clean"}
  assert {p.name for p in _earlier_exports()} >= {"local", "ojac_u250"}


def test_at_least_one_release_per_track():
  tracks = set()
  for directory in _exports():
    summary = json.loads((directory / "summary.json").read_text())
    if summary["release"]:
      tracks.add(summary["track"])
  assert tracks == {"paper", "extension"}


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.py")), ids=lambda p: p.name)
def test_no_config_starts_from_a_tainted_theta(path):
  if path.name == "__init__.py":
    return
  cfg = runpy.run_path(str(path))["get_config"]()
  start = cfg.learner.init_theta
  if not start:
    return
  summary = json.loads((ROOT / start / "summary.json").read_text()) if (ROOT / start).is_dir() else None
  if summary is None:  # a start the config's docstring builds first (hand_rule_theta): its base counts
    return
  assert lineage.problems(summary) == []


def test_a_run_extends_its_starts_lineage_and_refuses_a_tainted_start(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  theta = jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(1), cfg.rule))
  tainted = {"track": "paper", "lineage": [_entry("old", "untrained", holdout=False)]}
  export.save_theta(tmp_path / "tainted", theta, cfg, tainted)
  cfg.learner.init_theta = str(tmp_path / "tainted")
  with pytest.raises(export.ExportError, match="without the validation holdout"):
    trainer.meta_train(cfg, tmp_path / "refused", progress=False, stop_at_step=0)

  clean = {"track": "extension", "lineage": [_entry("old", "untrained")]}
  export.save_theta(tmp_path / "clean", theta, cfg, clean)
  cfg.learner.init_theta = str(tmp_path / "clean")
  cfg.learner.num_updates = 1
  trainer.meta_train(cfg, tmp_path / "run", progress=False, config_source="configs/tiny.py")
  summary = json.loads((tmp_path / "run" / "theta" / "summary.json").read_text())
  assert summary["track"] == "extension"  # inherited from the start
  old, new = summary["lineage"]
  assert old == clean["lineage"][0]
  assert new["run"] == str(tmp_path / "run") and new["start"] == "old" and new["update"] == 1
  assert new["config"] == "configs/tiny.py" and new["selected_on"] is None
  assert new["validation_holdout"] == bool(cfg.task.validation_holdout)


def test_init_theta_with_other_rule_settings_is_refused(tiny_cfg, tmp_path):
  cfg = tiny_cfg.copy_and_resolve_references()
  theta = jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(1), cfg.rule))
  export.save_theta(tmp_path / "start", theta, cfg, {"track": "paper", "lineage": [_entry("a", "untrained")]})
  cfg.rule.inner_lr = float(cfg.rule.inner_lr) * 10
  cfg.learner.init_theta = str(tmp_path / "start")
  with pytest.raises(export.ExportError, match="rule.inner_lr"):
    trainer.meta_train(cfg, tmp_path / "run", progress=False, stop_at_step=0)
