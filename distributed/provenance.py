"""Where a θ came from, as data: its track, its lineage, and what a meta-training run's exports say.

A θ export's `summary.json` carries

  "track":   "paper" (the released rule family, the ridge meta-objective, truncated backprop,
             from an untrained θ or a paper-track θ) or "extension" (anything else: another
             Hebbian term or step, PES or hybrid estimators, a hand-set start);
  "lineage": a list, oldest first, of the runs that contributed parameters, each
             {"run", "config", "commit", "update", "validation_holdout", "start", "selected_on"}
             with `start` "untrained" or the previous entry's run, and `selected_on`
             {"task", "seeds"} when that θ was chosen by a score, else null; a run branched from
             another run's checkpoint adds "branch" {"run", "update", "optimizer"}.

A θ is clean when every entry ran with the validation holdout (meta-training never saw the
meta-validation classes) and no entry was selected on a test task (tasks/eval_tasks.py
TEST_TASKS): `problems` lists what fails. A θ inherits every choice made for its ancestors, so
one tainted entry taints it.

Every θ a run writes (`best/`, `snapshots/step_<N>/`, `theta/`, `scripts.export_theta`) carries a
training summary (updates, meta-gradients, hours, meta-loss) and these fields, inherited from the
start (`learner.init_theta`, whose own lineage must be clean, or `learner.branch_from`) and recorded
once per run as its origin, which a resumed run keeps.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from meta_unsup_rules.distributed import checkpoint
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.tasks.eval_tasks import TEST_TASKS
from meta_unsup_rules.util import run_record

TRACKS = ("paper", "extension")
ENTRY_FIELDS = ("run", "config", "commit", "update", "validation_holdout", "start", "selected_on")
UNTRAINED = "untrained"


def current_commit() -> str | None:
  """The checkout's commit (with "+dirty" when tracked files differ), or None outside git."""
  commit, dirty = run_record.git_state()
  if commit is None:
    return None
  return commit + ("+dirty" if dirty else "")


def config_track(cfg) -> str:
  """The track a meta-training config's own choices put it on (its start aside)."""
  rule_cfg, unroll_cfg = cfg.rule, cfg.unroll
  released = rule_cfg.get("hebb_term", "released") == "released" and rule_cfg.get(
    "step_mode", "released"
  ) in ("released",)
  tbptt = unroll_cfg.get("estimator", "tbptt") == "tbptt"
  ridge = cfg.meta_objective.get("kind", "ridge") == "ridge" if "meta_objective" in cfg else True
  return "paper" if released and tbptt and ridge else "extension"


def combined_track(own: str, start_lineage: list[dict], start_track: str | None) -> str:
  """A θ is on the paper track only if its run and everything it started from are."""
  if own != "paper":
    return "extension"
  if start_lineage and start_track != "paper":
    return "extension"
  return "paper"


def run_entry(
  run, config, update: int, validation_holdout: bool, start_lineage: list[dict], selected_on=None, commit=None
) -> dict:
  """One lineage entry for a run of `update` updates started from `start_lineage`'s θ."""
  return {
    "run": str(run),
    "config": None if config is None else str(config),
    "commit": commit if commit is not None else current_commit(),
    "update": int(update),
    "validation_holdout": bool(validation_holdout),
    "start": start_lineage[-1]["run"] if start_lineage else UNTRAINED,
    "selected_on": selected_on,
  }


def selected_on(task: str, seeds) -> dict:
  """A `selected_on` value: the task and the [first, last] seeds of the score that chose θ."""
  return {"task": str(task), "seeds": [int(seeds[0]), int(seeds[-1])]}


def problems(summary: dict | None) -> list[str]:
  """What makes a θ export's lineage unclean or unreadable ([] when it is clean)."""
  if not summary or "lineage" not in summary or "track" not in summary:
    return ["summary.json has no track/lineage: the θ's history is unknown"]
  out = []
  if summary["track"] not in TRACKS:
    out.append(f"track {summary['track']!r} is not one of {TRACKS}")
  lineage = summary["lineage"]
  if not isinstance(lineage, list) or not lineage:
    return out + ["lineage is not a non-empty list"]
  for i, entry in enumerate(lineage):
    missing = [f for f in ENTRY_FIELDS if f not in entry]
    if missing:
      out.append(f"lineage[{i}] ({entry.get('run')}) lacks {missing}")
      continue
    if entry["validation_holdout"] is not True:
      out.append(f"lineage[{i}] ({entry['run']}) ran without the validation holdout")
    chosen = entry["selected_on"]
    if chosen is not None and chosen.get("task") in TEST_TASKS:
      out.append(f"lineage[{i}] ({entry['run']}) was selected on the test task {chosen['task']!r}")
    expected_start = UNTRAINED if i == 0 else lineage[i - 1]["run"]
    if entry["start"] != expected_start:
      out.append(f"lineage[{i}] ({entry['run']}) starts from {entry['start']!r}, not {expected_start!r}")
  return out


# ------------------------------------------------------------ a meta-training run's exports


def meta_grads(counters) -> int:
  """Meta-gradients received so far (accepted, stale or non-finite): cumulative over resumes."""
  return int(counters["accepted"] + counters["stale"] + counters["nonfinite"])


# Rule fields that choose how the same values are computed (speed, not numerics).
_SAME_NUMERICS_FIELDS = ("implementation",)


def initial_theta_from_export(directory, template, rule_cfg=None):
  """θ of an export, checked against `template`'s architecture: a new run fine-tunes it.

  Only θ is taken: Adam's moments, the step and the schedule start afresh, so a smaller
  `learner.learning_rates` continues a run at a lower learning rate. The run's `rule` section
  must equal the export's (ExportError otherwise): a θ means something only with the rule
  settings it was trained under, and a hand-set rule's inner step or hebb_term is easily left
  out of the overrides. Fine-tune with the export's own config plus learner overrides.
  """
  theta, export_cfg, _ = export.load_theta(directory)
  if rule_cfg is not None and "rule" in export_cfg:
    theirs = export_cfg.rule.to_dict()
    differ = {
      k: (v, rule_cfg[k])
      for k, v in sorted(theirs.items())
      if k in rule_cfg and rule_cfg[k] != v and k not in _SAME_NUMERICS_FIELDS
    }
    if differ:
      raise export.ExportError(
        f"learner.init_theta={directory} was exported with other rule settings than this run's: "
        + ", ".join(f"rule.{k} {a!r} there, {b!r} here" for k, (a, b) in differ.items())
        + f". Start from the export's own config ({pathlib.Path(directory) / 'config.json'}: pass its rule "
        "values as --config.rule.<field> overrides) or use a config with the same rule section"
      )
  return export.unflatten_like(template, export.flatten_tree(theta), what=f"learner.init_theta={directory}")


def run_origin(cfg, workdir, config_source, saved) -> dict:
  """What every θ this run exports inherits: the start's lineage and track, this run's name,
  config, commit and holdout. A resumed run keeps the origin its checkpoint recorded.

  A start whose lineage is not clean (learned_update.problems) is refused unless
  `learner.require_clean_start` is False: a θ inherits every choice made for its ancestors.
  """
  if saved is not None and saved.get("origin"):
    return saved["origin"]
  start_lineage, start_track = [], None
  if cfg.learner.init_theta:
    _, _, start_summary = export.load_theta(cfg.learner.init_theta)
    found = problems(start_summary)
    if found and cfg.learner.require_clean_start:
      raise export.ExportError(
        f"learner.init_theta={cfg.learner.init_theta}: its lineage is not clean ({'; '.join(found)}). "
        "Start from a θ whose every ancestor ran with the validation holdout and was never selected on a "
        "test task, or set --config.learner.require_clean_start=False for a study that reports it as tainted"
      )
    start_lineage = list((start_summary or {}).get("lineage") or [{"run": str(cfg.learner.init_theta)}])
    start_track = (start_summary or {}).get("track")
  holdout = bool(cfg.task.validation_holdout)
  return {
    "run": run_name(workdir),
    "config": config_source,
    "commit": current_commit(),
    "validation_holdout": holdout,
    "track": combined_track(config_track(cfg), start_lineage, start_track),
    "start_lineage": start_lineage,
  }


def branch_origin(cfg, workdir, config_source, parent: dict, optimizer: str) -> dict:
  """The origin of a run started from another run's checkpoint `parent` (a payload with "path"):
  its lineage is the parent's up to that checkpoint's update, then this run; `branch` says
  where it started and whether Adam's state came along ("restored") or started afresh ("fresh").
  A parent whose lineage is not clean is refused as `learner.init_theta` would be."""
  parent_dir = pathlib.Path(parent["path"]).parent
  update = int(parent["step"])
  parent_origin = parent.get("origin") or run_origin(
    export.config_from_json(parent["config_json"]), parent_dir, None, None
  )
  inherited = lineage_fields(parent_origin, update)
  found = problems(inherited)
  if found and cfg.learner.require_clean_start:
    raise export.ExportError(
      f"learner.branch_from={cfg.learner.branch_from}: its lineage is not clean ({'; '.join(found)}); "
      "set --config.learner.require_clean_start=False for a study that reports it as tainted"
    )
  start_lineage = inherited["lineage"]
  return {
    "run": run_name(workdir),
    "config": config_source,
    "commit": current_commit(),
    "validation_holdout": bool(cfg.task.validation_holdout),
    "track": combined_track(config_track(cfg), start_lineage, inherited["track"]),
    "start_lineage": start_lineage,
    "branch": {"run": start_lineage[-1]["run"], "update": update, "optimizer": optimizer},
  }


def run_name(workdir) -> str:
  """The run as lineages name it: relative to the working directory when inside it, so that an
  exported lineage carries no machine's absolute paths."""
  path = pathlib.Path(workdir)
  try:
    return str(path.resolve().relative_to(pathlib.Path.cwd().resolve()))
  except ValueError:
    return str(path)


def lineage_fields(origin: dict, update: int, selected_on=None) -> dict:
  """The `track` and `lineage` fields of a summary.json for θ at `update` of this run."""
  entry = run_entry(
    origin["run"],
    origin["config"],
    update,
    origin["validation_holdout"],
    origin["start_lineage"],
    selected_on,
    commit=origin["commit"],
  )
  if origin.get("branch"):
    entry["branch"] = dict(origin["branch"])
  return {"track": origin["track"], "lineage": [*origin["start_lineage"], entry]}


def training_summary(workdir, payload: dict) -> dict:
  """Updates, meta-gradients, hours and final meta-loss of a checkpoint (for a θ export).

  The meta-loss is the mean over the last 10 logged updates up to the checkpoint's step:
  one update's loss depends on which few tasks its gradients came from.
  """
  step = int(payload["step"])
  counters = payload["learner"]["counters"]
  records = []
  metrics = pathlib.Path(workdir) / "metrics.jsonl"
  if metrics.is_file():
    with open(metrics, encoding="utf-8") as f:
      records = [r for r in map(json.loads, f) if r["step"] <= step]
  # null: a non-finite loss (strict JSON); old files may hold NaN, which json.loads reads.
  last = [r["meta_loss"] for r in records[-10:] if r["meta_loss"] is not None]
  first = [r["meta_loss"] for r in records[:10] if r["meta_loss"] is not None]
  return {
    "updates": step,
    "meta_grads": meta_grads(counters),
    "hours": float(payload.get("elapsed_sec", 0.0)) / 3600.0,
    "final_meta_loss": float(np.mean(last)) if last else None,
    "first_meta_loss": float(np.mean(first)) if first else None,
    **{k: int(v) for k, v in counters.items()},
  }


def export_checkpoint(workdir, out_dir, step: int | None = None) -> dict:
  """Writes the θ-only export (theta.npz, config.json, summary.json) of a checkpoint.

  `step` None takes the newest checkpoint. Returns the summary.
  """
  if step is None:
    payload = checkpoint.load_latest(workdir)  # skips an unreadable newest one, with a warning
  else:
    path = pathlib.Path(workdir) / checkpoint.checkpoint_name(step)
    payload = None
    if path in checkpoint.list_checkpoints(workdir):
      payload = {**checkpoint.load_path(path), "path": str(path)}
  if payload is None:
    raise checkpoint.CheckpointError(
      f"no checkpoint{'' if step is None else f' of step {step}'} in {workdir} "
      f"(expected files named {checkpoint.checkpoint_name(0).replace('0', '#')})"
    )
  theta, cfg = checkpoint.theta_from_payload(payload)
  summary = {"checkpoint": pathlib.Path(payload["path"]).name, **training_summary(workdir, payload)}
  origin = payload.get("origin") or run_origin(cfg, workdir, None, None)
  summary.update(lineage_fields(origin, int(payload["step"])))
  export.save_theta(out_dir, theta, cfg, summary)
  return summary
