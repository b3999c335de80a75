r"""Held-out few-shot accuracy of a meta-training run's θ snapshots against updates.

  python -m experiments.tools.heldout_curve --snapshots=experiments/earlier/runs/local_run/snapshots \
      --task=tiny_mnist --inner_steps=1000 --seeds=3
  python -m experiments.tools.heldout_curve --thetas=runs/a,runs/b --task=tiny_fashion_mnist --untrained=false

The Fig. 3 analogue on a task never seen in meta-training: did meta-training still help
when it was stopped? Evaluates every θ export in --snapshots (its `step_<N>` folders, as
meta-training writes them every `learner.snapshot_every` updates) and in --thetas, plus
the untrained θ of the same architecture as update 0 (--untrained), with the protocol of
scripts.evaluate (every flag and config field of it applies; methods default: learned,
random_init, unless --methods or --config.evaluation.methods says otherwise). The
update count of an export comes from its summary.json. Writes <out_dir>/curve.json and
curve.png (final accuracy ± s.e. against updates; default runs/curve/<task>); the last
stdout line is one JSON object with the curve.
"""

import dataclasses
import json
import os
import pathlib

from absl import flags, logging

from meta_unsup_rules.evaluation import outputs, plots, runner
from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import files, run_record

_CONFIG, _OUT = evaluation_args.define_evaluation_flags(
  "Config: rule, base model, inner batch, evaluation, baselines.",
  "Output directory (default runs/curve/<task>).",
)
_SNAPSHOTS = flags.DEFINE_string("snapshots", None, "A folder of θ exports (step_<N>/ from meta-training).")
_THETAS = flags.DEFINE_list("thetas", [], "More θ export directories.")
_UNTRAINED = flags.DEFINE_bool("untrained", True, "Include the untrained θ (init_theta(seed)) as update 0.")
SCRIPT_DEFAULTS = {"evaluation.methods": ("learned", "random_init")}


def export_dirs(snapshots: str | None, thetas) -> list[pathlib.Path]:
  """The θ export directories named by --snapshots and --thetas, in that order."""
  dirs = []
  if snapshots:
    root = pathlib.Path(snapshots)
    if not root.is_dir():
      cli.fail(f"--snapshots={snapshots}: not a directory (expected a folder of θ exports)")
    dirs += sorted(p for p in root.iterdir() if (p / "theta.npz").is_file())
    if not dirs:
      cli.fail(f"--snapshots={snapshots}: no θ export inside (folders holding theta.npz)")
  return dirs + [pathlib.Path(t) for t in thetas if t.strip()]


def updates_of(directory: pathlib.Path) -> int | None:
  try:
    return int(json.loads((directory / "summary.json").read_text())["updates"])
  except (OSError, KeyError, ValueError, TypeError):
    return None


def main(argv):
  del argv
  dirs = export_dirs(_SNAPSHOTS.value, _THETAS.value)
  if not dirs and not _UNTRAINED.value:
    cli.fail("nothing to evaluate: give --snapshots and/or --thetas (θ export directories)")
  # The set-up checks the first export; its rule is also the untrained θ's architecture.
  cfg = config_args.apply_aliases(_CONFIG.value, config_args.EVALUATION_ALIASES, SCRIPT_DEFAULTS)
  s = evaluation_args.set_up_evaluation(cfg, theta=str(dirs[0]) if dirs else "random")
  points = [("untrained", "random", 0)] if _UNTRAINED.value else []
  for d in dirs:
    n = updates_of(d)
    if n is None:
      cli.fail(
        f"{d}: its summary.json gives no 'updates' (a θ export written by meta-training "
        f"or scripts.export_theta is expected)"
      )
    points.append((d.name, str(d), n))
  steps = s.inner_steps
  out_dir = pathlib.Path(_OUT.value or os.path.join("runs", "curve", s.task.name))
  curve = {"task": s.task.name, "inner_steps": steps, "seeds": s.seeds, "methods": s.methods, "points": []}
  readouts = len(points) * len(s.seeds) * len(runner.eval_points(steps, s.eval_every))
  bar, log = cli.readout_progress("held-out curve", readouts)
  for name, theta_arg, updates in points:
    theta_fn, cfg = evaluation_args.resolve_theta(s, theta_arg)
    logging.info("θ %s (%d updates)", name, updates)
    result = runner.run_evaluation(
      dataclasses.replace(s, cfg=cfg, inner_steps=steps, theta_fn=theta_fn), log=log
    )
    result["theta"] = theta_arg
    outputs.write_outputs(result, out_dir / name)
    curve["points"].append({"name": name, "theta": theta_arg, "updates": updates, "final": result["final"]})
  bar.close()
  curve["points"].sort(key=lambda p: p["updates"])
  out_dir.mkdir(parents=True, exist_ok=True)
  files.atomic_write_json(out_dir / "curve.json", run_record.with_record(curve))
  plots.plot_curve(curve, out_dir / "curve.png")
  cli.emit_json(
    {
      "task": s.task.name,
      "out_dir": str(out_dir),
      "curve": [{"updates": p["updates"], "final": p["final"]} for p in curve["points"]],
    }
  )


if __name__ == "__main__":
  cli.run(main)
