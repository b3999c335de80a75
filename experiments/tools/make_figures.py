r"""Paper-style figures from evaluation outputs (results.json of scripts.evaluate).

  python -m experiments.tools.make_figures --results=runs/eval/tiny_mnist/results.json,\
runs/eval/tiny_fashion_mnist/results.json --out_dir=runs/figures

Writes fig4_final_accuracy.png (Fig. 4 left: final few-shot accuracy per method and task,
± s.e.m.; one panel per readout) and, per input, <task>_curves.png (accuracy vs inner
steps, as scripts.evaluate's accuracy.png), and results.md (one Markdown table per readout:
methods × tasks, final accuracy mean ± s.e.). Sweep plots come from scripts.sweep; Fig. 6
from experiments.tools.feature_figures.
"""

import json
import os

from absl import flags

from meta_unsup_rules.evaluation import outputs, plots
from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import files

_RESULTS = flags.DEFINE_list("results", None, "results.json files of scripts.evaluate.")
_OUT = flags.DEFINE_string("out_dir", "runs/figures", "Output directory.")


def main(argv):
  del argv
  if not _RESULTS.value:
    cli.fail("--results is required: comma-separated results.json files of scripts.evaluate")
  results = []
  for path in _RESULTS.value:
    try:
      with open(path) as f:
        results.append(json.load(f))
    except (OSError, ValueError) as e:
      cli.fail(f"cannot read {path}: {e}")
  os.makedirs(_OUT.value, exist_ok=True)
  merged = outputs.merge_results(results)
  written = [
    plots.plot_final_bars(
      merged, outputs.known_methods(merged), os.path.join(_OUT.value, "fig4_final_accuracy.png")
    )
  ]
  for r in results:
    # One plot per run: runs of one task (e.g. baselines, then a shipped θ) must not overwrite.
    theta = r.get("theta")
    tag = (
      ""
      if theta is None
      else "_untrained"
      if theta == "random"
      else "_" + os.path.basename(theta.rstrip("/"))
    )
    path = os.path.join(_OUT.value, f"{r['task']}_curves{tag}.png")
    plots.plot_result(r, path)
    written.append(path)
  path = os.path.join(_OUT.value, "results.md")
  files.atomic_write_bytes(path, outputs.results_markdown(results).encode())
  written.append(path)
  cli.emit_json({"figures": written})


if __name__ == "__main__":
  cli.run(main)
