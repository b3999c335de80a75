"""Checks of the evaluation settings, `cfg.evaluation` (values: configs/paper.py).

Every evaluating command validates the section once at start (evaluation/evaluation_setup.py), so a typo
stops the run before a task is loaded or a method trained, with the field, its value and what
is allowed.
"""

from __future__ import annotations

from meta_unsup_rules.util.config_check import Section


def validate_config(ecfg) -> None:
  """Checks the `evaluation` section (raises util.config_check.ConfigError)."""
  # pylint: disable=g-import-not-at-top  (runner imports JAX; the constants are what we need)
  from meta_unsup_rules.evaluation import protocols, runner
  from meta_unsup_rules.tasks import eval_tasks, own_data

  s = Section(ecfg, "evaluation")
  task = s.value("task")
  if own_data.is_own(task):
    if not task.split(":", 1)[1]:
      s.fail("task", "a path after the prefix: npz:PATH or folder:PATH")
  elif task not in eval_tasks.EVAL_TASKS:
    s.fail("task", f"one of {eval_tasks.EVAL_TASKS}, npz:PATH or folder:PATH")
  s.int_at_least("own_image_size", 1)
  s.boolean("own_greyscale")
  theta = s.value("theta")
  if not isinstance(theta, str) or not theta:
    s.fail("theta", "'random' or a θ export directory")
  s.int_at_least("inner_steps", 0)
  s.int_at_least("eval_every", 0)  # 0: max(1, inner_steps // 5)
  s.int_at_least("seeds", 1)
  s.subset("methods", runner.METHODS)
  s.int_at_least("support_per_class", 1)
  s.int_at_least("max_test", 1)
  s.int_at_least("test_chunk", 1)
  s.positive("logistic_c")
  s.one_of("protocol", protocols.PROTOCOLS)
  for name in ("n_way", "k_shot", "n_query", "episodes"):
    s.int_at_least(name, 1)
  s.int_at_least("probe_max_train", 1)
  s.one_of("batch_seeds", runner.BATCH_SEEDS)
  fractions = s.numbers("label_fractions", lo=0.0, lo_open=True, hi=1.0)
  labels = [protocols.fraction_label(f) for f in fractions]
  if len(set(labels)) < len(labels):
    s.fail("label_fractions", "distinct fractions in (0, 1] (as percentages to 6 digits)")


def eval_every(ecfg) -> int:
  """Steps between readouts: `eval_every`, or max(1, inner_steps // 5) when it is 0."""
  return int(ecfg.eval_every) or max(1, int(ecfg.inner_steps) // 5)


def make_task(ecfg):
  """The task of `cfg.evaluation`, a `folder:PATH` task read at `own_image_size` / `own_greyscale`
  (one place for every script that evaluates on `evaluation.task`)."""
  from meta_unsup_rules.tasks import eval_tasks  # pylint: disable=g-import-not-at-top  (loads data modules)

  return eval_tasks.make_eval_task(ecfg.task, image_size=ecfg.own_image_size, greyscale=ecfg.own_greyscale)
