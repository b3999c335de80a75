r"""The README's main job: the released θs of both tracks against an untrained θ and random init.

  python -m scripts.demo                                   # the releases below, Tiny MNIST, 3 seeds
  python -m scripts.demo --theta=runs/local/theta --task=tiny_fashion_mnist --seeds=5

Rows, for each seed on the same fresh 4×128+32 base model, trained without labels for
--inner_steps steps and read out with ridge and logistic regression on 10 labelled examples
per class:
* the paper-track release (the paper's method: the released rule family meta-trained by
  truncated backprop on the ridge meta-objective, from an untrained θ);
* the extension release ([ours]: Oja's subspace direction as the rule's Hebbian term);
* an untrained θ with the paper-track θ's rule settings (`init_theta(PRNGKey(seed))`);
* random init: no update at all.
Each θ runs under its own export's rule settings; the table names its track (summary.json).
--theta replaces the two releases by one θ (an export directory, or "random").
The full comparison with every baseline is `scripts.evaluate` (README Results).

Settings are `cfg.evaluation` fields as in scripts.evaluate (--task, --inner_steps, --seeds,
--support_per_class, --max_test are aliases of them); the demo always runs the fewshot
protocol with one readout after the last step.
"""

import os

from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import progress

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ALIASES = ("theta", "task", "inner_steps", "seeds", "support_per_class", "max_test")
_CONFIG, _ = evaluation_args.define_evaluation_flags(
  "Evaluation config (inner batch); θ's own config supplies the rule.", aliases=_ALIASES
)
# The releases the demo shows when neither --theta nor --config.evaluation.theta is given.
RELEASES = (
  os.path.join(_ROOT, "checkpoints", "paper_track_u1200"),
  os.path.join(_ROOT, "checkpoints", "ojac_clean_u50"),
)
_DEFAULT = "releases"
SCRIPT_DEFAULTS = {"evaluation.theta": _DEFAULT}


def main(argv):
  del argv
  import jax

  from meta_unsup_rules.evaluation import runner
  from meta_unsup_rules.learned_update import ExportError, export, rule

  cfg = config_args.apply_aliases(_CONFIG.value, _ALIASES, SCRIPT_DEFAULTS)
  config_args.validate(cfg, config_args.EVALUATION_SECTIONS)
  ecfg = cfg.evaluation
  if ecfg.protocol != "fewshot":
    cli.fail(
      f"config field evaluation.protocol = {ecfg.protocol!r} is not allowed: expected "
      "'fewshot' (the demo's table; scripts.evaluate runs the other protocols)"
    )
  theta_args = RELEASES if ecfg.theta == _DEFAULT else (ecfg.theta,)
  # The task and seeds (evaluation/evaluation_setup.py); each θ is resolved against its config below.
  s = evaluation_args.set_up_evaluation(cfg, theta="random")
  task, steps, seeds = s.task, s.inner_steps, s.seeds
  runs = []  # (label, θ per seed, config, summary)
  for arg in theta_args:
    theta_fn, theta_cfg = evaluation_args.resolve_theta(s, arg)  # the export's own sections checked
    try:
      summary = (export.load_theta(arg)[2] or {}) if arg != "random" else {}
    except ExportError as e:
      cli.fail(str(e))
    track = summary.get("track", "untrained" if arg == "random" else "unknown track")
    runs.append((f"{os.path.basename(os.path.normpath(arg))} [{track}]", theta_fn, theta_cfg, summary))
  first_cfg = runs[0][2]  # the untrained θ takes the first θ's rule settings
  untrained_fn = lambda seed: rule.init_theta(jax.random.PRNGKey(seed), first_cfg.rule)
  jobs = [(label, fn, run_cfg, ("learned",)) for label, fn, run_cfg, _ in runs]
  jobs.append(
    (f"untrained θ (rule of {runs[0][0].split(' ')[0]})", untrained_fn, first_cfg, ("learned", "random_init"))
  )
  rows = {}
  every = max(1, steps)  # one readout, after the last step (and one at step 0)
  # One tick per seed and readout point of every row's run: rate and ETA on stderr (util.progress).
  bar = progress.bar(len(jobs) * len(seeds) * len(runner.eval_points(steps, every)), "demo", unit="readout")
  for label, theta_fn, run_cfg, methods in jobs:
    bar.set_description(label.split(" ")[0], refresh=False)
    result = runner.run_evaluation(
      runner.EvaluationRun(task, run_cfg, methods, steps, every, seeds, theta_fn), log=lambda _: bar.update()
    )
    for method in methods:
      rows[label if method == "learned" else "random init (no updates)"] = result["final"][method]
  bar.close()
  print(
    f"\n{task.name}: {s.cfg.evaluation.support_per_class}-shot test accuracy after {steps} inner steps, "
    f"{len(seeds)} seeds (mean ± s.e.)"
  )
  print(f"{'θ [track]':<40}{'ridge':>18}{'logistic':>18}")
  fmt = lambda r: f"{r['mean']:.3f} ± {r['sem']:.3f}" if r["sem"] is not None else f"{r['mean']:.3f}"
  for label, r in rows.items():
    print(f"{label:<40}{fmt(r['ridge']):>18}{fmt(r['logistic']):>18}")
  for label, _, _, summary in runs:
    if summary:
      print(
        f"{label}: {summary.get('updates')} updates, {summary.get('meta_grads')} meta-gradients, "
        f"{summary.get('hours') or 0:.1f} h; lineage: "
        + " → ".join(str(e.get("run")).split(" ")[0] for e in summary.get("lineage", []))
      )
  cli.emit_json(
    {
      "thetas": list(theta_args),
      "training": {label: summary for label, _, _, summary in runs},
      "task": task.name,
      "inner_steps": steps,
      "seeds": seeds,
      "accuracy": rows,
    }
  )


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
