r"""The geometry of the learned rule's weight changes along an inner loop, for several θ.

  E=experiments/earlier/thetas
  python -m experiments.tools.rule_geometry --thetas=random,$E/local_u236,$E/local,$E/local_u1331 \
      --task=tiny_mnist --inner_steps=1000 --config.seed=0

Per θ and layer, at every inner step: the tangential share of ‖ΔW‖² (the part that turns
receptive fields; the rest only grows them), the radial growth, the applied angular step
per receptive field (mean and max, radians) and the column lengths; plus θ's 13 mixing
weights (evaluation/rule_geometry.py). Every θ runs on the same seed's base model and
stream (the evaluated network, config `base_model`; an export's config supplies its rule,
and `--config.rule.*` overrides re-apply, e.g. `--config.rule.step_mode=tangential`).
Writes <out_dir>/geometry.json (every step), summary.json (steps 1, 100, 1,000 and the summed
angle per layer, mixing weights) and geometry.png; the last stdout line is one JSON object
with the per-layer values at inner steps 1, 100 and 1,000.
"""

import pathlib

from absl import flags

from meta_unsup_rules.evaluation import plots, rule_geometry
from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import files, run_record

_CONFIG, _OUT = evaluation_args.define_evaluation_flags(
  "Config: rule, base model, inner batch, evaluation, baselines.",
  "Output directory (default runs/geometry/<task>).",
)
_THETAS = flags.DEFINE_list("thetas", ["random"], "θ export directories, or 'random' (init_theta(seed)).")


def main(argv):
  del argv
  cfg = config_args.apply_aliases(_CONFIG.value, config_args.EVALUATION_ALIASES)
  s = evaluation_args.set_up_evaluation(cfg, theta="random")  # each θ of --thetas is resolved below
  task, steps, seed = s.task, s.inner_steps, int(s.cfg.seed)
  out_dir = pathlib.Path(_OUT.value or f"runs/geometry/{task.name}")
  result = {"task": task.name, "seed": seed, "inner_steps": steps, "thetas": {}}
  for theta_arg in _THETAS.value:
    theta_fn, theta_cfg = evaluation_args.resolve_theta(s, theta_arg)
    t = rule_geometry.trace(theta_fn(seed), theta_cfg, task, seed, steps)
    t["step_mode"] = theta_cfg.rule.step_mode
    t["inner_lr"] = float(theta_cfg.rule.inner_lr)
    result["thetas"][theta_arg] = t
    print(f"{theta_arg}: mixing {', '.join(f'{k} {v:+.2f}' for k, v in t['mixing'].items())}")
    for row in rule_geometry.summarise(t):
      print("  " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()))
  out_dir.mkdir(parents=True, exist_ok=True)
  files.atomic_write_json(out_dir / "geometry.json", run_record.with_record(result))
  summary = {
    "task": task.name,
    "seed": seed,
    "inner_steps": steps,
    "thetas": {
      k: {"mixing": t["mixing"], "step_mode": t["step_mode"], "layers": rule_geometry.summarise(t)}
      for k, t in result["thetas"].items()
    },
  }
  files.atomic_write_json(out_dir / "summary.json", run_record.with_record(summary))
  plots.plot_geometry(result, out_dir / "geometry.png")
  cli.emit_json(
    {
      "task": task.name,
      "out_dir": str(out_dir),
      "summary": {k: v["layers"] for k, v in summary["thetas"].items()},
    }
  )


if __name__ == "__main__":
  cli.run(main)
