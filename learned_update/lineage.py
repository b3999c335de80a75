"""Where a θ came from, as data: its track and every run that contributed parameters.

A θ export's `summary.json` carries

  "track":   "paper" (the released rule family, the ridge meta-objective, truncated backprop,
             from an untrained θ or a paper-track θ) or "extension" (anything else: another
             Hebbian term or step, PES or hybrid estimators, a hand-set start);
  "lineage": a list, oldest first, of the runs that contributed parameters, each
             {"run", "config", "commit", "update", "validation_holdout", "start", "selected_on"}
             with `start` "untrained" or the previous entry's run, and `selected_on`
             {"task", "seeds"} when that θ was chosen by a score, else null.

A θ is clean when every entry ran with the validation holdout (meta-training never saw the
meta-validation classes) and no entry was selected on a test task: `problems` lists what
fails. A θ inherits every choice made for its ancestors, so one tainted entry taints it.
"""

from __future__ import annotations

from meta_unsup_rules.util import run_record

TRACKS = ("paper", "extension")
# Tasks reported in the final results only: never a basis for choosing anything.
TEST_TASKS = ("tiny_mnist", "tiny_fashion_mnist", "mnist", "fashion_mnist", "imdb", "imagenet_heldout")
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
