r"""θ's size per sub-network and the rule's speed at a config's shapes.

python -m experiments.tools.inspect_rule --config=configs/paper.py
python -m experiments.tools.inspect_rule --config=configs/local.py --input_dim=256
"""

from absl import flags

from meta_unsup_rules.benchmarks import rule_timing
from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.scripts import cli, config_args
from meta_unsup_rules.util import jax_setup

cli.define_data_dir_flag()  # this command loads data
_CONFIG = config_args.define_config_file("config", "configs/paper.py", "Config file.")
_INPUT_DIM = flags.DEFINE_integer("input_dim", 196, "Input features (196 = Tiny MNIST).")
_K = flags.DEFINE_integer("k", 5, "Unroll length for the meta-gradient timing.")


def main(argv):
  del argv
  cfg = _CONFIG.value
  if _INPUT_DIM.value < 1 or _K.value < 1:
    cli.fail(f"--input_dim and --k must be positive, got {_INPUT_DIM.value}, {_K.value}")
  jax_setup.configure_jax()
  counts = rule.theta_param_count_formula(cfg.rule)
  for name, count in counts.items():
    print(f"theta.{name:<13} {count:>8,d} parameters")
  print(f"theta total         {sum(counts.values()):>8,d} (the released code at its sizes: ~115,000)")
  widths = tuple(cfg.base_model.hidden_widths) + (cfg.base_model.top_width,)
  print(
    f"timing: input {_INPUT_DIM.value}, widths {widths}, batch {cfg.unroll.inner_batch_size}, k={_K.value}"
  )
  m = rule_timing.measure_rule(cfg, _INPUT_DIM.value, k=_K.value)
  print(
    f"  {m['sec_per_inner_step']:.4f} s per inner step, {m['sec_per_meta_grad']:.3f} s per meta-gradient"
    f" (compile {m['compile_sec_meta_grad']:.0f} s); meta-gradient finite: {m['meta_grad_finite']}"
  )
  cli.emit_json(
    {
      "theta_params": sum(counts.values()),
      "theta_params_by_part": counts,
      "input_dim": _INPUT_DIM.value,
      "widths": widths,
      "inner_batch_size": cfg.unroll.inner_batch_size,
      **m,
    }
  )


if __name__ == "__main__":
  cli.run(main)
