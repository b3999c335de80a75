r"""End-to-end demo: meta-train briefly, then compare initial θ, trained θ and random init.

  python -m scripts.demo                      # embedded default (configs/demo.py)
  python -m scripts.demo --workdir=runs/demo --inner_steps=100 --seeds=2
"""
from absl import app, flags
from ml_collections import config_flags

from scripts import common

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py", "Config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Meta-training workdir (resumed if present).")
_TASK = flags.DEFINE_string("task", "tiny_mnist", "Evaluation task.")
_STEPS = flags.DEFINE_integer("inner_steps", 100, "Inner steps of the evaluation.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Evaluation seeds.")


def main(argv):
  del argv
  cfg = _CONFIG.value
  import jax
  from distributed import trainer
  from learned_update import export, load_theta, rule
  from meta_objective import evaluate as ev
  from tasks import DataError, eval_tasks
  export.configure_jax()
  if _TASK.value not in eval_tasks.EVAL_TASKS or _STEPS.value < 0 or _SEEDS.value < 1:
    common.fail(f"need --task in {eval_tasks.EVAL_TASKS}, --inner_steps >= 0, --seeds >= 1")
  try:
    summary = trainer.meta_train(cfg, _WORKDIR.value)
    task = eval_tasks.make_eval_task(_TASK.value)
  except DataError as e:
    common.fail(str(e))
  trained, _, _ = load_theta(f"{_WORKDIR.value}/theta")
  initial = rule.init_theta(jax.random.PRNGKey(cfg.seed), cfg.rule)
  seeds = [cfg.seed + i for i in range(_SEEDS.value)]
  rows = {}
  for name, theta, methods in (("meta-trained θ", trained, ("learned", "random_init")),
                               ("initial θ", initial, ("learned",))):
    result = ev.run_evaluation(task, cfg, methods, _STEPS.value, _STEPS.value, seeds,
                               theta_fn=lambda seed, theta=theta: theta)
    for method in methods:
      label = name if method == "learned" else "random init (no updates)"
      rows[label] = result["final"][method]
  print(f"\n{task.name}: 10-shot test accuracy after {_STEPS.value} inner steps, "
        f"{len(seeds)} seeds (mean ± s.e.)")
  print(f"{'method':<28}{'ridge':>18}{'logistic':>18}")
  fmt = lambda r: f"{r['mean']:.3f} ± {r['sem']:.3f}" if r["sem"] is not None else f"{r['mean']:.3f}"
  for label, r in rows.items():
    print(f"{label:<28}{fmt(r['ridge']):>18}{fmt(r['logistic']):>18}")
  print(f"(θ after {summary['step']} meta-training updates, {summary['meta_grads']} meta-gradients "
        "this run: a pipeline demonstration, not a trained rule)\n")
  common.emit_json({"meta_training": summary, "task": task.name, "inner_steps": _STEPS.value,
                    "accuracy": rows})


if __name__ == "__main__":
  app.run(main)
