r"""Arms on an equal budget from one state: validation curves, paired differences, the decision.

  python -m experiments.tools.arms --control=a=experiments/paper_track_arms/runs/a_control \
      --arms=e=experiments/paper_track_arms/runs/e_mixing_lr3,... \
      --start=experiments/paper_track/run/snapshots/step_00002000 \
      --floors=docs/results/floors/alphabet_val_seeds1000.json \
      --out=experiments/paper_track_arms/results/round1.json \
      --figure=experiments/paper_track_arms/figures/round1.png

Each arm is a meta-training workdir branched from one state (`learner.branch_from`) whose θ snapshots
were validated (inline records in metrics.jsonl, or an evaluator's validation.jsonl) on the same task
and seeds. Per arm and validation: mean ± s.e. over the seeds; the paired difference to the control
per seed (the same seeds, networks and streams), averaged over the last `--last` validations both
have, and its standard error over the seeds; the decision rule fixed before the arms ran: an arm
*helps* when that mean difference exceeds `--threshold_se` standard errors. `--start` (the branch
point's θ) is validated with the arms' settings and drawn at the first update. Core-hours are the
trainer's CPU seconds (`cpu_sec`) up to each validated update, from the branch on.
"""

from __future__ import annotations

import json
import pathlib

from absl import flags

from experiments.tools.trends import floor_levels, paired, split_labelled
from meta_unsup_rules.distributed import validation
from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.learned_update import export
from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import files, run_record

cli.define_data_dir_flag()  # this command loads data
_CONTROL = flags.DEFINE_string("control", None, "LABEL=WORKDIR of the control arm.")
_ARMS = flags.DEFINE_list("arms", [], "LABEL=WORKDIR of each other arm.")
_START = flags.DEFINE_string(
  "start", None, "θ export of the branch point (validated with the arms' settings)."
)
_FLOORS = flags.DEFINE_string("floors", None, "results.json of the validation task's floors (dashed lines).")
_LAST = flags.DEFINE_integer("last", 2, "Validations at the end whose paired differences are averaged.")
_THRESHOLD = flags.DEFINE_float("threshold_se", 2.0, "An arm helps above this many standard errors.")
_OUT = flags.DEFINE_string("out", None, "JSON of the numbers (a Markdown table is written beside it).")
_FIGURE = flags.DEFINE_string("figure", None, "PNG (and PDF) of the validation curves.")
_TITLE = flags.DEFINE_string("title", "Arms from one state", "Figure title.")


def arm_records(workdir) -> list[dict]:
  """The validated updates of a run: {step, val_accuracy, val_sem, val_per_seed, cpu_sec, ...}."""
  return [r for r in validation.merged_records(workdir) if r.get("val_per_seed") is not None]


def _start_record(theta_dir, settings_from) -> dict:
  """The branch point validated with the arms' settings (the control's config)."""
  theta, _, summary = export.load_theta(theta_dir)
  cfg = export.load_config_json(pathlib.Path(settings_from) / "config.json")
  step = int((summary or {}).get("updates", 0))
  record = validation.Validator(cfg).run(theta, step)
  return {"step": step, **record, "cpu_sec": 0.0}


def _labelled(entry: str) -> tuple[str, str]:
  pair = split_labelled(entry)
  if pair is None:
    cli.fail(f"{entry!r}: expected LABEL=WORKDIR")
  return pair


def main(argv):
  del argv
  if not _CONTROL.value or not _OUT.value:
    cli.fail("--control and --out are required")
  arms = dict([_labelled(_CONTROL.value)] + [_labelled(a) for a in _ARMS.value])
  control_label = next(iter(arms))
  out = pathlib.Path(_OUT.value)
  cache = out.with_name(out.stem + "_start.json")
  start = None
  if _START.value:
    if cache.is_file():
      start = json.loads(cache.read_text())
    else:
      start = _start_record(_START.value, arms[control_label])
      files.atomic_write_json(cache, run_record.with_record(start))
  records = {label: arm_records(path) for label, path in arms.items()}
  result = {"control": control_label, "threshold_se": _THRESHOLD.value, "last": _LAST.value, "arms": {}}
  for label, recs in records.items():
    if not recs:
      cli.fail(f"arm {label} ({arms[label]}) has no validation records with per-seed accuracies")
    first_cpu = 0.0
    entry = {
      "workdir": arms[label],
      "curve": [
        {
          "step": r["step"],
          "mean": r["val_accuracy"],
          "sem": r["val_sem"],
          "effective_rank": r.get("val_effective_rank"),
          "core_hours": (r.get("cpu_sec", 0.0) - first_cpu) / 3600.0,
        }
        for r in recs
      ],
    }
    if label != control_label:
      d = paired(recs, records[control_label], _LAST.value)
      d["helps"] = bool(d["mean"] is not None and d["sem"] and d["mean"] > _THRESHOLD.value * d["sem"])
      entry["paired_vs_control"] = d
    result["arms"][label] = entry
  if start is not None:
    result["start"] = {"step": start["step"], "mean": start["val_accuracy"], "sem": start["val_sem"]}
  floors = {}
  if _FLOORS.value:
    floors = floor_levels(_FLOORS.value, methods=("raw_input", "hebbian", "random_init"))
    result["floors"] = floors
  files.atomic_write_json(out, run_record.with_record(result))
  out.with_suffix(".md").write_text(_table(result), encoding="utf-8")
  if _FIGURE.value:
    curves = {
      f"{label} ({e['curve'][-1]['core_hours']:.1f} core-h)": [
        *([] if start is None else [(start["step"], start["val_accuracy"], start["val_sem"] or 0.0)]),
        *[(c["step"], c["mean"], c["sem"] or 0.0) for c in e["curve"]],
      ]
      for label, e in result["arms"].items()
    }
    plots.plot_arms(curves, floors, _FIGURE.value, _TITLE.value)
  print(_table(result))
  cli.emit_json({k: v for k, v in result.items() if k != "arms"})


def _table(result: dict) -> str:
  steps = sorted({c["step"] for e in result["arms"].values() for c in e["curve"]})
  head = "| arm | " + " | ".join(f"update {s}" for s in steps) + " | core-h | paired Δ (last) | helps |"
  lines = [head, "|" + " --- |" * (len(steps) + 4)]
  for label, e in result["arms"].items():
    by_step = {c["step"]: c for c in e["curve"]}
    cells = [
      f"{by_step[s]['mean']:.3f} ± {by_step[s]['sem'] or 0:.3f}" if s in by_step else "—" for s in steps
    ]
    d = e.get("paired_vs_control")
    delta = "control" if d is None else f"{d['mean']:+.4f} ± {d['sem']:.4f}"
    helps = "—" if d is None else ("yes" if d["helps"] else "no")
    lines.append(
      f"| {label} | " + " | ".join(cells) + f" | {e['curve'][-1]['core_hours']:.2f} | {delta} | {helps} |"
    )
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  cli.run(main)
