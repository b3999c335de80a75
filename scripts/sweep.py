r"""Architecture / activation / permutation sweeps of the evaluation (docs/method.md §7, Fig. 5).

  python -m scripts.sweep --sweep=activation --theta=runs/local/theta \
      --task=tiny_mnist --inner_steps=1000 --seeds=3
  python -m scripts.sweep --sweep=width --values=64,256,1024 --theta=random

Every flag and config field of scripts.evaluate applies (methods default here:
learned,random_init, unless --methods or --config.evaluation.methods says otherwise). For
each value the base model's field is set (width v: 4 hidden layers of v units; depth d:
d hidden layers of 128; activation; permute_inputs true/false) and the full protocol of
evaluation/runner.py runs. Writes <out_dir>/<value>/results.* per value plus
<out_dir>/sweep.json and sweep.png (final accuracy vs value); --out_dir defaults to a new folder
per sweep, runs/sweep/<task>_<sweep>/<θ name>-<YYYYmmdd-HHMMSS>; the last stdout line is the JSON
of final accuracies (with out_dir).
"""

import dataclasses
import os

from absl import flags, logging

from meta_unsup_rules.evaluation import outputs, plots, runner, sweeps
from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import files, run_record

_CONFIG, _OUT = evaluation_args.define_evaluation_flags(
  "Config: rule, base model, inner batch, evaluation, baselines.",
  "Output directory (default runs/sweep/<task>_<sweep>).",
)
_SWEEP = flags.DEFINE_enum("sweep", None, list(sweeps.SWEEPS), "What to sweep.")
_VALUES = flags.DEFINE_list("values", None, "Sweep values (default: evaluation.sweeps.SWEEPS).")
# Below --methods and --config.evaluation.methods: a sweep of every baseline takes hours.
SCRIPT_DEFAULTS = {"evaluation.methods": ("learned", "random_init")}


def main(argv):
  del argv
  if _SWEEP.value is None:
    cli.fail(f"--sweep is required: one of {', '.join(sweeps.SWEEPS)}")
  cfg = config_args.apply_aliases(_CONFIG.value, config_args.EVALUATION_ALIASES, SCRIPT_DEFAULTS)
  s = evaluation_args.set_up_evaluation(cfg)  # evaluation/evaluation_setup.py
  values = _VALUES.value or list(sweeps.SWEEPS[_SWEEP.value][1])
  try:
    cfgs = {v: sweeps.sweep_config(s.cfg, _SWEEP.value, v) for v in values}
  except ValueError as e:
    cli.fail(str(e))
  name = f"{s.task.name}_{_SWEEP.value}"
  out_dir = _OUT.value or str(outputs.new_out_dir(os.path.join("runs", "sweep"), name, s.theta))
  summary = {
    "task": s.task.name,
    "sweep": _SWEEP.value,
    "values": values,
    "methods": s.methods,
    "inner_steps": s.inner_steps,
    "theta": s.theta,
    "seeds": s.seeds,
    "final": {},
  }
  points = len(runner.eval_points(s.inner_steps, s.eval_every))
  bar, log = cli.readout_progress(f"sweep {_SWEEP.value}", len(cfgs) * len(s.seeds) * points)
  for v, cfg in cfgs.items():
    logging.info("sweep %s = %s", _SWEEP.value, v)
    result = runner.run_evaluation(dataclasses.replace(s, cfg=cfg), log=log)
    result["theta"] = s.theta
    outputs.write_outputs(result, os.path.join(out_dir, str(v)))
    summary["final"][v] = result["final"]
  bar.close()
  os.makedirs(out_dir, exist_ok=True)
  files.atomic_write_json(os.path.join(out_dir, "sweep.json"), run_record.with_record(summary))
  plots.plot_sweep(summary, os.path.join(out_dir, "sweep.png"))
  cli.emit_json({**{k: summary[k] for k in ("task", "sweep", "inner_steps", "final")}, "out_dir": out_dir})


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
