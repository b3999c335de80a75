r"""What the learned rule's features look like (the paper's Fig. 6): evaluation/features.py.

  python -m scripts.feature_figures --theta=runs/local/theta --task=tiny_mnist --inner_steps=1000
  python -m scripts.feature_figures --theta=runs/local/theta --task=two_moons --inner_steps=1000

Applies θ (an export directory, or 'random') to the fresh base model of --seed for
--inner_steps unlabelled minibatches, as scripts.evaluate does, and writes to --out_dir
(default runs/figures/<task>): fig6_receptive_fields.png (image tasks: first-layer filters in
pixel order, random init beside learned θ), fig6_two_moons.png (--task=two_moons),
fig6_pca_spectrum.png (top-layer feature PCA on test data, log scale) and fig6_summary.json.
Last stdout line: one JSON object with the files and the effective ranks. Bad input exits 2.
"""
import json
import os

from absl import app, flags
from ml_collections import config_flags

from scripts import common

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(_ROOT, "configs", "local.py"),
                                          "Base config (rule, base model, inner batch).")
_THETA = flags.DEFINE_string("theta", "random", "θ export directory, or 'random'.")
_TASK = flags.DEFINE_string("task", "tiny_mnist", "Evaluation task (tasks.eval_tasks.EVAL_TASKS).")
_STEPS = flags.DEFINE_integer("inner_steps", 1000, "Rule applications (unlabelled minibatches).")
_SEED = flags.DEFINE_integer("seed", 0, "Base model, θ for --theta=random, and stream.")
_OUT = flags.DEFINE_string("out_dir", None, "Output directory (default runs/figures/<task>).")
_MAX_TEST = flags.DEFINE_integer("max_test", 2000, "Test examples for the feature PCA.")
_FIELDS = flags.DEFINE_integer("num_fields", 64, "First-layer units drawn per network.")


def main(argv):
  del argv
  import ml_collections
  from tasks import DataError, eval_tasks
  if _TASK.value not in eval_tasks.EVAL_TASKS:
    common.fail(f"unknown task {_TASK.value!r}; known: {', '.join(eval_tasks.EVAL_TASKS)}")
  if _STEPS.value < 0 or _MAX_TEST.value < 2 or _FIELDS.value < 1:
    common.fail("need --inner_steps >= 0, --max_test >= 2, --num_fields >= 1")
  import learned_update
  from evaluation import features, learned_rule
  learned_update.configure_jax()
  cfg = ml_collections.ConfigDict(_CONFIG.value.to_dict())
  try:
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    theta_fn, cfg = learned_rule.resolve_theta(_THETA.value, cfg, overrides)
  except learned_update.ExportError as e:
    common.fail(str(e))
  try:
    task = eval_tasks.make_eval_task(_TASK.value)
  except (DataError, ValueError, OSError) as e:
    common.fail(f"cannot load task {_TASK.value!r}: {e}")
  out_dir = _OUT.value or os.path.join("runs", "figures", task.name)
  summary = features.feature_figures(task, cfg, theta_fn, _STEPS.value, _SEED.value, out_dir,
                                     _MAX_TEST.value, _FIELDS.value)
  summary["theta"] = _THETA.value
  path = os.path.join(out_dir, "fig6_summary.json")
  with open(path, "w") as f:
    json.dump(summary, f, indent=2)
  summary["files"]["summary"] = path
  common.emit_json({k: summary[k] for k in ("task", "theta", "inner_steps", "seed", "files",
                                            "effective_rank", "top_component")})


if __name__ == "__main__":
  app.run(main)
