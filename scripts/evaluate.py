r"""Evaluate a learned update rule against baselines on a meta-test task (docs/method.md §6–7).

  python -m scripts.evaluate --theta=runs/local/theta --task=tiny_mnist \
      --inner_steps=2000 --eval_every=250 --seeds=5
  python -m scripts.evaluate --theta=random --task=tiny_mnist --inner_steps=200 --seeds=3
  python -m scripts.evaluate --task=tiny_mnist \
      --methods=random_init,protonet,protonet_permuted
  python -m scripts.evaluate --task=tiny_mnist --protocol=semi_supervised \
      --label_fractions=0.01,0.1
  python -m scripts.evaluate --theta=checkpoints/ojac_hand_clean --task=npz:my_data.npz --seeds=3
  python -m scripts.evaluate --config.evaluation.support_per_class=5 \
      --config.baselines.vae.learning_rate=3e-4

For each seed: a fresh seeded base model; the rule (θ from an export directory, or
`init_theta(PRNGKey(seed))` for --theta=random) applied on the unlabelled stream
(batch cfg.unroll.inner_batch_size); the baselines on the same stream from the same
initial network; ridge and logistic readouts on a `support_per_class`-per-class
support set at steps 0, M, 2M, ..., N. Protocol: evaluation/runner.py, evaluation/protocols.py.
--protocol=episodic: N-way K-shot episodes (--episodic); linear_probe: readouts fitted on
the whole train split (at most --probe_max_train examples); semi_supervised: readouts
fitted on each fraction of --label_fractions of every class's train labels, reported as
"ridge@1%", "logistic@10%", .... The protonet baselines are supervised references trained
on all train labels (base_models/baselines/protonet.py).

Your own data: --task=npz:PATH or folder:PATH (formats, checks and the seeded train/test
split: tasks/own_data.py; folder images are resized to evaluation.own_image_size, grey
unless own_greyscale is False); the task is named npz_<file stem> or folder_<folder name> in the
default output directory.

Config: --config (default configs/local.py: cheaper rule, inner batch 32). Every setting is
a field of it: the evaluation's in `cfg.evaluation` (task, theta, inner_steps, eval_every,
seeds, methods, support_per_class, max_test, protocol, n_way/k_shot/n_query/episodes,
probe_max_train, label_fractions, test_chunk, logistic_c, batch_seeds), the baselines' in
`cfg.baselines`, all changed with `--config.a.b=...`. The short flags (--task,
--inner_steps, --episodic=n_way,k_shot,n_query,episodes, ...) are aliases of those fields:
applied only when given, and an explicit --config.evaluation.<field> wins over its alias
(scripts/config_args.py). With an exported θ its own config.json supplies `rule` and
`base_model` (explicit --config.rule.* / --config.base_model.* overrides still win); the
evaluation and baseline settings always come from --config. The config is checked before
anything runs (the set-up of every evaluating command: evaluation/evaluation_setup.py).

Writes <out_dir>/results.csv, results.json (with the config used and the run record: commit,
package versions, command line), accuracy.png and TensorBoard curves (tensorboard/<method>/,
accuracy against inner steps) into --out_dir, by default a new folder for each evaluation,
runs/eval/<task>/<θ name>-<YYYYmmdd-HHMMSS> (θ name: the export's folder name, or "random"), so an
evaluation never replaces another's (an explicit --out_dir that holds one is replaced, with a
warning); progress with ETA goes to stderr;
the last stdout line is one JSON object with the final accuracies per method. Bad input (a
config value outside what is allowed, unknown task / method / protocol, missing θ, an unknown
--config field) exits with status 2 and names the field.
"""

import os

from absl import logging

from meta_unsup_rules.evaluation import outputs, runner
from meta_unsup_rules.scripts import cli, config_args, evaluation_args

_CONFIG, _OUT = evaluation_args.define_evaluation_flags(
  "Config: rule, base model, inner batch, evaluation, baselines.",
  "Output directory (default: a new runs/eval/<task>/<θ name>-<time>).",
)


def main(argv):
  del argv
  cfg = config_args.apply_aliases(_CONFIG.value, config_args.EVALUATION_ALIASES)
  s = evaluation_args.set_up_evaluation(cfg)  # evaluation/evaluation_setup.py: checked config, task, θ, seeds
  logging.info(
    "task %s, methods %s, %d steps (every %d), seeds %s, theta %s",
    s.task.name,
    s.methods,
    s.inner_steps,
    s.eval_every,
    s.seeds,
    s.theta,
  )
  points = len(runner.eval_points(s.inner_steps, s.eval_every))
  bar, log = cli.readout_progress(f"evaluate {s.task.name}", len(s.seeds) * points)
  result = runner.run_evaluation(s, log=log)
  bar.close()
  result["theta"] = s.theta
  out_dir = _OUT.value or str(outputs.new_out_dir(os.path.join("runs", "eval"), s.task.name, s.theta))
  if _OUT.value and os.path.isfile(os.path.join(out_dir, "results.json")):
    logging.warning("--out_dir=%s holds an earlier evaluation: its results are replaced", out_dir)
  paths = outputs.write_outputs(result, out_dir)
  logging.info(
    "wrote %s; %.1f s (per method: %s)",
    paths,
    result["seconds"]["total"],
    {m: round(t, 1) for m, t in result["seconds"]["per_method"].items()},
  )
  cli.emit_json(
    {
      "task": s.task.name,
      "inner_steps": s.inner_steps,
      "theta": s.theta,
      "seeds": len(s.seeds),
      "final": result["final"],
      "out_dir": out_dir,
    }
  )


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
