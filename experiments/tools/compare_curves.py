r"""Accuracy against inner steps of several evaluations side by side: a markdown table and one plot.

  python -m experiments.tools.compare_curves \
      --results=x0.5=runs/diag/scale_u400_merge_x0.5,x1=runs/diag/scale_local \
      --method=learned --readout=ridge --out=runs/diag/scale_sweep.png

Each entry is LABEL=DIR (or LABEL=DIR/results.json) of a scripts.evaluate output. Prints the table
(mean ± s.e. over seeds at every evaluation point the runs share), writes the plot to --out, and the
last stdout line is one JSON object with the table.
"""

import json
import pathlib

from absl import flags

from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.scripts import cli

_RESULTS = flags.DEFINE_list("results", [], "LABEL=DIR entries (scripts.evaluate output directories).")
_METHOD = flags.DEFINE_string("method", "learned", "Method row to compare.")
_READOUT = flags.DEFINE_string("readout", "ridge", "Readout to compare.")
_OUT = flags.DEFINE_string("out", None, "Where to write the plot (PNG).")


def load_curves(entries, method: str, readout: str) -> dict:
  """{label: {step: (mean, sem)}} from LABEL=DIR entries; exits 2 on a bad entry."""
  curves = {}
  for entry in entries:
    label, p = cli.labelled_path(entry, "results", "DIR", "results.json")
    try:
      result = json.loads(p.read_text())
    except (OSError, ValueError) as e:
      cli.fail(f"{p}: cannot read a scripts.evaluate results.json ({type(e).__name__}: {e})")
    rows = [r for r in result.get("rows", []) if r.get("method") == method and r.get("readout") == readout]
    if not rows:
      cli.fail(f"{p}: no rows for method {method!r} and readout {readout!r}")
    curves[label] = {int(r["step"]): (float(r["mean"]), float(r["sem"] or 0.0)) for r in rows}
  return curves


def main(argv):
  del argv
  if not _RESULTS.value:
    cli.fail("--results is required: LABEL=DIR,... of scripts.evaluate outputs")
  curves = load_curves(_RESULTS.value, _METHOD.value, _READOUT.value)
  steps = sorted(set.intersection(*(set(c) for c in curves.values())))
  print("| " + " | ".join(["inner steps"] + [str(s) for s in steps]) + " |")
  print("| " + " | ".join(["---"] * (len(steps) + 1)) + " |")
  for label, c in curves.items():
    print("| " + " | ".join([label] + [f"{c[s][0]:.3f} ± {c[s][1]:.3f}" for s in steps]) + " |")
  if _OUT.value:
    pathlib.Path(_OUT.value).parent.mkdir(parents=True, exist_ok=True)
    plots.plot_curves_by_label(curves, _OUT.value, f"{_METHOD.value}, {_READOUT.value} readout")
  cli.emit_json({"steps": steps, "curves": {k: [list(c[s]) for s in steps] for k, c in curves.items()}})


if __name__ == "__main__":
  cli.run(main)
