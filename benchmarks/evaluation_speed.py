"""Evaluation speed: seconds per seed and inner steps per second for the learned rule and each baseline.

Each method runs alone through evaluation.runner.run_evaluation (the path of scripts.evaluate, with
the config's `evaluation.batch_seeds`) on a few seeds and a short inner loop, compile included (what
a user waits for); the readout is fitted once, at the last step. The learned rule runs an untrained
θ of the config's rule: its speed does not depend on θ's values.
"""

from __future__ import annotations

import time

import jax

from meta_unsup_rules.evaluation import runner
from meta_unsup_rules.learned_update import rule

FULL = dict(task="tiny_mnist", seeds=2, inner_steps=200)
QUICK = dict(task="tiny_mnist", seeds=1, inner_steps=3, methods=("learned", "random_init", "hebbian"))


def evaluation_speed(cfg, methods=None, quick: bool = False, log=print) -> dict:
  """{"task", "seeds", "inner_steps", "batch_seeds", "methods": {name: {sec, sec_per_seed, ...}}}."""
  from meta_unsup_rules.tasks import eval_tasks

  spec = QUICK if quick else FULL
  methods = list(methods or spec.get("methods") or cfg.evaluation.methods)
  task = eval_tasks.make_eval_task(spec["task"])
  seeds = list(range(spec["seeds"]))
  steps = int(spec["inner_steps"])
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  out = {
    "task": task.name,
    "seeds": len(seeds),
    "inner_steps": steps,
    "batch_seeds": str(cfg.evaluation.batch_seeds),
    "compile_included": True,
    "methods": {},
  }
  for m in methods:
    t = time.perf_counter()
    theta_fn = (lambda seed: theta) if m == "learned" else None
    runner.run_evaluation(runner.EvaluationRun(task, cfg, [m], steps, steps, seeds, theta_fn))
    sec = time.perf_counter() - t
    out["methods"][m] = {
      "sec": sec,
      "sec_per_seed": sec / len(seeds),
      "seeds_per_sec": len(seeds) / sec,
      "inner_steps_per_sec": len(seeds) * steps / sec,
    }
    log(f"  {m}: {sec / len(seeds):.1f} s per seed of {steps} inner steps (compile included)")
  return out
