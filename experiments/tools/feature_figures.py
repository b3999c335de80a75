r"""What the learned rule's features look like (the paper's Fig. 6): evaluation/features.py.

  python -m experiments.tools.feature_figures --theta=runs/local/theta --task=tiny_mnist --inner_steps=1000
  python -m experiments.tools.feature_figures --theta=runs/local/theta --task=two_moons --inner_steps=1000

Applies θ (an export directory, or 'random') to the fresh base model of --seed for
--inner_steps unlabelled minibatches, as scripts.evaluate does, and writes to --out_dir
(default runs/figures/<task>): fig6_receptive_fields.png (image tasks: first-layer filters in
pixel order, random init beside learned θ), fig6_two_moons.png (--task=two_moons),
fig6_pca_spectrum.png (top-layer feature PCA on test data, log scale) and fig6_summary.json.
Last stdout line: one JSON object with the files and the effective ranks. Bad input exits 2.

Settings are config fields as in scripts.evaluate: --theta, --task, --inner_steps and
--max_test alias `cfg.evaluation.*`, --seed aliases `cfg.seed` (an explicit --config.<field>
wins). --num_fields and --out_dir only shape the drawing and where it goes.
"""

import os

from absl import flags

from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import files, run_record

_ALIASES = ("theta", "task", "inner_steps", "max_test", "seed")
_CONFIG, _OUT = evaluation_args.define_evaluation_flags(
  "Base config (rule, base model, inner batch).", "Output directory (default runs/figures/<task>).", _ALIASES
)
_FIELDS = flags.DEFINE_integer("num_fields", 64, "First-layer units drawn per network.")


def main(argv):
  del argv
  cfg = config_args.apply_aliases(_CONFIG.value, _ALIASES)
  config_args.validate(cfg, config_args.EVALUATION_SECTIONS)
  ecfg = cfg.evaluation
  if ecfg.max_test < 2:  # a PCA of one example has no spectrum
    cli.fail(
      f"config field evaluation.max_test = {ecfg.max_test} is not allowed: expected an "
      "integer >= 2 (the feature PCA)"
    )
  if _FIELDS.value < 1:
    cli.fail(f"--num_fields={_FIELDS.value}: expected an integer >= 1")
  from meta_unsup_rules.evaluation import features

  s = evaluation_args.set_up_evaluation(
    cfg, readouts=False
  )  # evaluation/evaluation_setup.py; no support sets here
  out_dir = _OUT.value or os.path.join("runs", "figures", s.task.name)
  max_test = int(s.cfg.evaluation.max_test)
  summary = features.feature_figures(
    s.task, s.cfg, s.theta_fn, s.inner_steps, int(s.cfg.seed), out_dir, max_test, _FIELDS.value
  )
  summary["theta"] = s.theta
  path = os.path.join(out_dir, "fig6_summary.json")
  files.atomic_write_json(path, run_record.with_record(summary))
  summary["files"]["summary"] = path
  cli.emit_json(
    {
      k: summary[k]
      for k in ("task", "theta", "inner_steps", "seed", "files", "effective_rank", "top_component")
    }
  )


if __name__ == "__main__":
  cli.run(main)
