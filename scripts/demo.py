r"""The README's main job: the shipped meta-trained θ against the untrained θ and random init.

  python -m scripts.demo                                   # checkpoints/local, Tiny MNIST
  python -m scripts.demo --theta=runs/local/theta --task=tiny_fashion_mnist --seeds=5

For each seed a fresh 4×128+32 base model (the same one for every row) is trained without
labels for --inner_steps steps by the shipped θ and by an untrained θ of the same
architecture and inner step (`init_theta(PRNGKey(seed))`), then read out with ridge and
logistic regression on 10 labelled examples per class; random init applies no update.
The full comparison with every baseline is `scripts.evaluate` (README Results).
"""
import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

from scripts import common

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(_ROOT, "configs", "local.py"),
                                          "Evaluation config (inner batch); θ's own config supplies the rule.")
_THETA = flags.DEFINE_string("theta", os.path.join(_ROOT, "checkpoints", "local"), "θ export directory.")
_TASK = flags.DEFINE_string("task", "tiny_mnist", "Evaluation task.")
_STEPS = flags.DEFINE_integer("inner_steps", 1000, "Unlabelled inner steps before the readout.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Evaluation seeds.")


class _Progress:
  """One line on stderr: which run, seeds done of all, elapsed time and ETA."""

  def __init__(self, total_seeds: int, points_per_seed: int):
    self.total, self.per_seed, self.calls, self.label = total_seeds, points_per_seed, 0, ""
    self.t0 = time.monotonic()

  def log(self, message: str) -> None:
    del message  # one call per evaluation point of a seed
    self.calls += 1
    if self.calls % self.per_seed:
      return
    done = self.calls // self.per_seed
    elapsed = time.monotonic() - self.t0
    eta = elapsed / done * (self.total - done)
    print(f"\r{self.label}: {done}/{self.total} seed runs done, {elapsed:.0f} s elapsed, "
          f"ETA {eta:.0f} s   ", end="", file=sys.stderr, flush=True)

  def close(self) -> None:
    print(file=sys.stderr, flush=True)


def main(argv):
  del argv
  import jax
  from learned_update import ExportError, export, rule
  from evaluation import learned_rule, runner
  from tasks import DataError, eval_tasks
  export.configure_jax()
  print(f"evaluating {_THETA.value} on {_TASK.value}: {_SEEDS.value} seeds x 2 runs of "
        f"{_STEPS.value} inner steps (a few minutes on 2 cores)", file=sys.stderr, flush=True)
  if _TASK.value not in eval_tasks.EVAL_TASKS or _STEPS.value < 0 or _SEEDS.value < 1:
    common.fail(f"need --task in {eval_tasks.EVAL_TASKS}, --inner_steps >= 0, --seeds >= 1")
  try:
    trained_fn, cfg = learned_rule.resolve_theta(_THETA.value, _CONFIG.value)
    task = eval_tasks.make_eval_task(_TASK.value)
  except (ExportError, DataError) as e:
    common.fail(str(e))
  summary = export.load_theta(_THETA.value)[2] or {}
  seeds = [int(cfg.seed) + i for i in range(_SEEDS.value)]
  untrained_fn = lambda seed: rule.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  rows = {}
  runs = (("meta-trained θ", trained_fn, ("learned", "random_init")),
          ("untrained θ", untrained_fn, ("learned",)))
  progress = _Progress(len(runs) * len(seeds), len(runner.eval_points(_STEPS.value, _STEPS.value)))
  for label, theta_fn, methods in runs:
    progress.label = label
    result = runner.run_evaluation(task, cfg, methods, _STEPS.value, _STEPS.value, seeds, theta_fn,
                                   log=progress.log)
    for method in methods:
      rows[label if method == "learned" else "random init (no updates)"] = result["final"][method]
  progress.close()
  print(f"\n{task.name}: 10-shot test accuracy after {_STEPS.value} inner steps, "
        f"{len(seeds)} seeds (mean ± s.e.); θ from {_THETA.value}")
  print(f"{'method':<28}{'ridge':>18}{'logistic':>18}")
  fmt = lambda r: f"{r['mean']:.3f} ± {r['sem']:.3f}" if r["sem"] is not None else f"{r['mean']:.3f}"
  for label, r in rows.items():
    print(f"{label:<28}{fmt(r['ridge']):>18}{fmt(r['logistic']):>18}")
  if summary:
    print(f"(θ meta-trained for {summary.get('updates')} updates, {summary.get('meta_grads')} "
          f"meta-gradients, {summary.get('hours', 0):.1f} h)\n")
  common.emit_json({"theta": _THETA.value, "training": summary, "task": task.name,
                    "inner_steps": _STEPS.value, "seeds": seeds, "accuracy": rows})


if __name__ == "__main__":
  app.run(main)
