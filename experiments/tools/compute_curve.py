r"""Validation against meta-training compute for paper-track runs, and how much more the method needs.

  python -m experiments.tools.compute_curve \
      --runs=run=experiments/paper_track/run,a=experiments/paper_track_arms/runs/a_control \
      --fit=run:100-1000 --floors=docs/results/floors/alphabet_val_seeds1000.json \
      --out=experiments/paper_track/results/compute_curve.json \
      --figure=experiments/paper_track/figures/compute_curve.png

x: the lineage's meta-gradients (`meta_grads_total`, which a branched run continues from its parent);
y: validation accuracy (mean ± s.e. over the validation seeds), inline or from an evaluator. The fit
is accuracy = a + b·log10(meta-gradients), ordinary least squares over the validations `--fit` names
(LABEL:FIRST-LAST updates: a stretch trained at one learning rate, before any drop of the rate), and
the meta-gradients at which the line reaches each floor (Oja's rule, the raw pixels) are read off it,
with a 68 % interval from the fit's parameter uncertainty (parametric bootstrap of (a, b) from the
OLS covariance). An extrapolation of a log-linear trend is an assumption, not a measurement: the
interval covers the fit's noise, not a change of the trend's shape.
"""

from __future__ import annotations

import pathlib

from absl import flags

from experiments.tools.trends import fit_log_linear, floor_levels, reach, split_labelled
from meta_unsup_rules.distributed import validation
from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import files, run_record

_RUNS = flags.DEFINE_list("runs", [], "LABEL=WORKDIR of each paper-track run (branches included).")
_FIT = flags.DEFINE_list("fit", [], "LABEL:FIRST-LAST: the validations (updates) the trend is fitted on.")
_FLOORS = flags.DEFINE_string("floors", None, "results.json of the validation task's floors.")
_OUT = flags.DEFINE_string("out", None, "JSON of the curves, the fit and the read-offs.")
_FIGURE = flags.DEFINE_string("figure", None, "PNG (and PDF) of validation against meta-gradients.")
_SAMPLES = flags.DEFINE_integer("samples", 20000, "Bootstrap draws of the fit's parameters.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the bootstrap.")

TARGETS = ("Oja's rule", "raw input")


def curve(workdir) -> list[dict]:
  """[{step, meta_grads, mean, sem}] of a run's validated updates."""
  out = []
  for r in validation.merged_records(workdir):
    if r.get("val_accuracy") is None:
      continue
    out.append(
      {
        "step": int(r["step"]),
        "meta_grads": int(r["meta_grads_total"]),
        "mean": float(r["val_accuracy"]),
        "sem": None if r.get("val_sem") is None else float(r["val_sem"]),
      }
    )
  return out


def _parse_fit(entry: str) -> tuple[str, int, int]:
  pair = split_labelled(entry, ":")
  label, span = pair or ("", "")
  first, dash, last = span.partition("-")
  if pair is None or not dash or not first.isdigit() or not last.isdigit():
    cli.fail(f"--fit={entry!r}: expected LABEL:FIRST-LAST (updates)")
  return label, int(first), int(last)


def main(argv):
  del argv
  if not _RUNS.value or not _OUT.value:
    cli.fail("--runs and --out are required")
  runs = {}
  for entry in _RUNS.value:
    pair = split_labelled(entry)
    if pair is None or not (pathlib.Path(pair[1]) / "metrics.jsonl").is_file():
      cli.fail(f"--runs entry {entry!r}: expected LABEL=WORKDIR with a metrics.jsonl")
    runs[pair[0]] = pair[1]
  curves = {label: curve(path) for label, path in runs.items()}
  result = {"runs": {label: {"workdir": runs[label], "curve": c} for label, c in curves.items()}}
  floors = {}
  if _FLOORS.value:
    floors = floor_levels(_FLOORS.value)
    result["floors"] = floors
  fit = None
  if _FIT.value:
    points = []
    for entry in _FIT.value:
      label, first, last = _parse_fit(entry)
      if label not in curves:
        cli.fail(f"--fit={entry!r}: no run labelled {label!r} in --runs")
      points += [p for p in curves[label] if first <= p["step"] <= last]
    try:
      fit = fit_log_linear([p["meta_grads"] for p in points], [p["mean"] for p in points])
    except ValueError as e:
      cli.fail(f"--fit: {e}")
    fit["points"] = _FIT.value
    fit["reach"] = {
      name: reach(fit, floors[name], _SAMPLES.value, _SEED.value) for name in TARGETS if name in floors
    }
    result["fit"] = fit
  files.atomic_write_json(pathlib.Path(_OUT.value), run_record.with_record(result))
  if _FIGURE.value:
    plots.plot_compute_curve(
      {label: [(p["meta_grads"], p["mean"], p["sem"] or 0.0) for p in c] for label, c in curves.items()},
      floors,
      fit,
      _FIGURE.value,
    )
  summary = {"floors": floors}
  if fit is not None:
    summary.update(slope_per_decade=fit["b"], reach=fit["reach"])
  cli.emit_json(summary)


if __name__ == "__main__":
  cli.run(main)
