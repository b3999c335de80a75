r"""How noisy the meta-gradients of one θ are, and which way they push the size of the rule's change.

  python -m experiments.tools.meta_gradient_noise --theta=experiments/earlier/thetas/local --num=64 \
      --group_sizes=1,8,32

Draws --num fresh meta-training tasks (the config's task distribution, one in-process worker each),
computes one truncated-backprop meta-gradient per task for θ, and reports the mean cosine between
the averages of disjoint groups of n meta-gradients (n = --group_sizes: a learner batch of n) and
the projection of the mean gradient step on θ's ΔW mixing weights
(experiments/tools/gradient_noise_estimates.py).
The last stdout line is one JSON object; --out writes it too.
"""

from absl import flags

from experiments.tools import _shared
from meta_unsup_rules.scripts import cli, config_args

cli.define_data_dir_flag()  # this command loads data
_CONFIG = config_args.define_config_file("config", "configs/local.py", "Config (task distribution, rule).")
_THETA = flags.DEFINE_string("theta", "experiments/earlier/thetas/local", "θ export directory (θ@400).")
_NUM = flags.DEFINE_integer("num", 64, "Meta-gradients, one per fresh task.")
_GROUPS = flags.DEFINE_list("group_sizes", ["1", "8", "32"], "Group sizes n (learner batch sizes).")
_OUT = flags.DEFINE_string("out", None, "Also write the JSON here.")


def main(argv):
  del argv
  cfg = _CONFIG.value
  config_args.validate(cfg, config_args.META_TRAIN_SECTIONS)
  try:
    sizes = [int(n) for n in _GROUPS.value]
  except ValueError:
    cli.fail(f"--group_sizes={','.join(_GROUPS.value)}: expected comma-separated integers >= 1")
  if _NUM.value < 2 or any(n < 1 for n in sizes):
    cli.fail(f"--num must be >= 2 and --group_sizes >= 1, got {_NUM.value}, {sizes}")
  from experiments.tools import gradient_noise_estimates as gradient_noise

  theta = _shared.theta_with_its_rule(_THETA.value, cfg)
  result = gradient_noise.meta_gradient_noise(cfg, theta, _NUM.value, sizes)
  result["theta"] = _THETA.value
  for g in result["group_cosines"]:
    print(f"n={g['n']:>3}: cosine between group means {g['mean']:.4f} ({g['pairs']} pairs)")
  d = result["descent_along_mixing_weights"]
  print(f"-g·w over the ΔW mixing weights: {d['mean']:.3g} ± {d['sem']:.2g}")
  _shared.write_result(_OUT.value, result)


if __name__ == "__main__":
  cli.run(main)
