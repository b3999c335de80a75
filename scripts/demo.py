r"""The README's main job: the shipped meta-trained θ against the untrained θ and random init.

  python -m scripts.demo                                   # checkpoints/ojac_u250 (the shipped θ), Tiny MNIST
  python -m scripts.demo --theta=runs/local/theta --task=tiny_fashion_mnist --seeds=5

For each seed a fresh 4×128+32 base model (the same one for every row) is trained without
labels for --inner_steps steps by the shipped θ and by an untrained θ of the same
architecture and inner step (`init_theta(PRNGKey(seed))`), then read out with ridge and
logistic regression on 10 labelled examples per class; random init applies no update.
The full comparison with every baseline is `scripts.evaluate` (README Results).

Settings are `cfg.evaluation` fields as in scripts.evaluate (--task, --inner_steps, --seeds,
--support_per_class, --max_test are aliases of them; --theta defaults to the shipped θ
here); the demo always runs the fewshot protocol with one readout after the last step.
"""

import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

from scripts import common

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file(
  "config",
  os.path.join(_ROOT, "configs", "local.py"),
  "Evaluation config (inner batch); θ's own config supplies the rule.",
)
_ALIASES = ("theta", "task", "inner_steps", "seeds", "support_per_class", "max_test")
common.define_aliases(_ALIASES)
# Below --theta and --config.evaluation.theta: the demo shows the shipped θ.
SCRIPT_DEFAULTS = {"evaluation.theta": os.path.join(_ROOT, "checkpoints", "ojac_u250")}


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
    print(
      f"\r{self.label}: {done}/{self.total} seed runs done, {elapsed:.0f} s elapsed, ETA {eta:.0f} s   ",
      end="",
      file=sys.stderr,
      flush=True,
    )

  def close(self) -> None:
    print(file=sys.stderr, flush=True)


def main(argv):
  del argv
  import jax

  from evaluation import learned_rule, runner
  from evaluation import settings as evaluation_settings
  from learned_update import ExportError, export, rule
  from tasks import DataError

  cfg = common.apply_aliases(_CONFIG.value, _ALIASES, SCRIPT_DEFAULTS)
  common.validate(cfg, common.EVALUATION_SECTIONS)
  ecfg = cfg.evaluation
  if ecfg.protocol != "fewshot":
    common.fail(
      f"config field evaluation.protocol = {ecfg.protocol!r} is not allowed: expected "
      "'fewshot' (the demo's table; scripts.evaluate runs the other protocols)"
    )
  theta_arg, steps = ecfg.theta, int(ecfg.inner_steps)
  export.configure_jax()
  print(
    f"evaluating {theta_arg} on {ecfg.task}: {ecfg.seeds} seeds x 2 runs of "
    f"{steps} inner steps (a few minutes on 2 cores)",
    file=sys.stderr,
    flush=True,
  )
  try:
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    trained_fn, cfg = learned_rule.resolve_theta(theta_arg, cfg, overrides)
    task = evaluation_settings.make_task(ecfg)
  except (ExportError, DataError) as e:
    common.fail(str(e))
  common.validate(cfg, ("base_model", "rule", "compatible"))  # the export's own sections
  summary = (export.load_theta(theta_arg)[2] or {}) if theta_arg != "random" else {}
  seeds = [int(cfg.seed) + i for i in range(int(ecfg.seeds))]
  untrained_fn = lambda seed: rule.init_theta(jax.random.PRNGKey(seed), cfg.rule)
  rows = {}
  runs = (
    ("meta-trained θ", trained_fn, ("learned", "random_init")),
    ("untrained θ", untrained_fn, ("learned",)),
  )
  every = max(1, steps)  # one readout, after the last step (and one at step 0)
  progress = _Progress(len(runs) * len(seeds), len(runner.eval_points(steps, every)))
  for label, theta_fn, methods in runs:
    progress.label = label
    result = runner.run_evaluation(task, cfg, methods, steps, every, seeds, theta_fn, log=progress.log)
    for method in methods:
      rows[label if method == "learned" else "random init (no updates)"] = result["final"][method]
  progress.close()
  print(
    f"\n{task.name}: {ecfg.support_per_class}-shot test accuracy after {steps} inner steps, "
    f"{len(seeds)} seeds (mean ± s.e.); θ from {theta_arg}"
  )
  print(f"{'method':<28}{'ridge':>18}{'logistic':>18}")
  fmt = lambda r: f"{r['mean']:.3f} ± {r['sem']:.3f}" if r["sem"] is not None else f"{r['mean']:.3f}"
  for label, r in rows.items():
    print(f"{label:<28}{fmt(r['ridge']):>18}{fmt(r['logistic']):>18}")
  if summary:
    print(
      f"(θ meta-trained for {summary.get('updates')} updates, {summary.get('meta_grads')} "
      f"meta-gradients, {summary.get('hours', 0):.1f} h)\n"
    )
  common.emit_json(
    {
      "theta": theta_arg,
      "training": summary,
      "task": task.name,
      "inner_steps": steps,
      "seeds": seeds,
      "accuracy": rows,
    }
  )


if __name__ == "__main__":
  app.run(main)
