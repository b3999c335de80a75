r"""Truncated backprop against the full-horizon gradient of θ's ΔW mixing weights, over fresh tasks.

  python -m experiments.tools.gradient_bias --theta=checkpoints/paper_track_u1200 \
      --config=configs/paper_track.py --num_tasks=64 --horizon=1000 --sigma=0.05 \
      --out=experiments/paper_track/results/gradient_bias_u400.json

The statistics and how to read them: experiments/tools/gradient_bias_estimates.py. Cost per task: one
meta-gradient per truncation plus 24 forward unrolls of the whole horizon (2 with
--directions=radial, 2 × --num_directions with --directions=random). The last stdout line is
one JSON object; --out writes it too.
"""

from absl import flags

from experiments.tools import _shared
from meta_unsup_rules.scripts import cli, config_args

cli.define_data_dir_flag()  # this command loads data
_CONFIG = config_args.define_config_file(
  "config", "configs/local.py", "Config (task distribution, truncation)."
)
_THETA = flags.DEFINE_string(
  "theta", None, "θ export directory (its own rule settings apply).", required=True
)
_NUM = flags.DEFINE_integer("num_tasks", 64, "Fresh meta-training tasks.")
_HORIZON = flags.DEFINE_integer("horizon", 1000, "Inner steps per task (a multiple of the truncation).")
_SIGMA = flags.DEFINE_float("sigma", 0.05, "Finite-difference step on each mixing weight.")
_DIRECTIONS = flags.DEFINE_enum(
  "directions",
  "coordinates",
  ["coordinates", "radial", "random"],
  "Finite differences along each mixing weight, only along w/‖w‖, or antithetic ES along "
  "--num_directions Gaussian directions per task.",
)
_NUM_DIRECTIONS = flags.DEFINE_integer(
  "num_directions", 2, "--directions=random: Gaussian directions per task (2 unrolls each)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Task draws (worker seed).")
_OUT = flags.DEFINE_string("out", None, "Also write the JSON here.")
_EXTEND = flags.DEFINE_string(
  "extend",
  None,
  "An earlier result JSON of the same θ, config, horizon, σ, directions and seed: its tasks are kept "
  "and only tasks len(tasks)..num_tasks-1 are computed.",
)


def main(argv):
  del argv
  cfg = _CONFIG.value
  config_args.validate(cfg, config_args.META_TRAIN_SECTIONS)
  if _NUM.value < 2:
    cli.fail(f"--num_tasks={_NUM.value}: expected >= 2 (standard errors need two tasks)")
  from experiments.tools import gradient_bias_estimates as gradient_bias

  earlier = _earlier_tasks(_EXTEND.value) if _EXTEND.value else None
  theta = _shared.theta_with_its_rule(_THETA.value, cfg)
  try:
    result = gradient_bias.truncation_bias(
      cfg,
      theta,
      _NUM.value,
      _HORIZON.value,
      _SIGMA.value,
      _DIRECTIONS.value,
      seed=_SEED.value,
      earlier_tasks=earlier,
      num_directions=_NUM_DIRECTIONS.value,
    )
  except ValueError as e:
    cli.fail(str(e))
  result["theta"] = _THETA.value
  half, cos, sem = result["split_half_cosine"], result["cosine_of_means"], result["cosine_of_means_sem"]
  print(
    f"cosine(mean truncated, mean full) {cos:.3f} ± {sem:.3f}; "
    f"split-half: truncated {half['tbptt']:.3f}, full {half['full']:.3f}"
  )
  for name, d in result["descent_along_mixing_weights"].items():
    print(f"-g·w ({name}): {d['mean']:.3g} ± {d['sem']:.2g}")
  _shared.write_result(_OUT.value, result)


def _earlier_tasks(path: str) -> list:
  """The per-task results of `path`, after checking that they were computed with these settings."""
  import json

  try:
    with open(path) as f:
      earlier = json.load(f)
  except (OSError, ValueError) as e:
    cli.fail(f"--extend={path}: cannot read it as a gradient_bias result JSON ({e})")
  wanted = {"horizon": _HORIZON.value, "sigma": _SIGMA.value, "directions": _DIRECTIONS.value}
  if _DIRECTIONS.value == "random":
    wanted["num_directions"] = _NUM_DIRECTIONS.value
  for key, value in wanted.items():
    if earlier.get(key) != value:
      cli.fail(f"--extend={path}: its {key} is {earlier.get(key)!r}, expected {value!r} (this run's)")
  seed = (earlier.get("run_record") or {}).get("command", "")
  if "--seed=" in seed and f"--seed={_SEED.value}" not in seed:
    cli.fail(f"--extend={path}: it was run with another --seed than {_SEED.value}")
  if not isinstance(earlier.get("tasks"), list) or len(earlier["tasks"]) > _NUM.value:
    cli.fail(f"--extend={path}: expected a 'tasks' list of at most --num_tasks={_NUM.value} entries")
  return earlier["tasks"]


if __name__ == "__main__":
  cli.run(main)
