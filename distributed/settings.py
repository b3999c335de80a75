"""Checks of the meta-training sections `learner`, `workers` and `validation` (values: configs/paper.py).

scripts.meta_train validates them at start, before Ray is started or the workdir is
created: a bad schedule or worker setting would otherwise fail after the first checkpoint,
or inside a remote actor. One home for these sections' checks (the learner and pools
modules stay about running them).
"""

from __future__ import annotations

from meta_unsup_rules.util.config_check import Section

WORKER_MODES = ("ray", "inprocess")
VALIDATION_MODES = ("inline", "async")


def validate_learner(learner_cfg) -> None:
  """Checks the `learner` section (raises util.config_check.ConfigError)."""
  s = Section(learner_cfg, "learner")
  s.int_at_least("batch_size", 1)
  s.int_at_least("num_updates", 1)
  unit = s.one_of("lr_boundaries_unit", ("updates", "fraction"))
  if unit == "updates":  # absolute: extending a run never moves its past
    bounds = s.numbers("lr_boundaries", lo=0.0, lo_open=True, min_len=0, increasing=True)
    if any(float(b) != int(b) for b in bounds):
      s.fail("lr_boundaries", "whole numbers of updates (learner.lr_boundaries_unit = 'updates')")
  else:  # fractions of num_updates (runs stored before the unit existed): raising it stretches them
    bounds = s.numbers(
      "lr_boundaries", lo=0.0, hi=1.0, lo_open=True, hi_open=True, min_len=0, increasing=True
    )
  rates = s.numbers("learning_rates", lo=0.0, lo_open=True)
  if len(rates) != len(bounds) + 1:
    s.fail(
      "learning_rates",
      f"{len(bounds) + 1} finite numbers > 0: one more than learner.lr_boundaries = {bounds}",
    )
  s.positive("clip_norm")
  s.number("adam_b1", lo=0.0, hi=1.0, hi_open=True)
  s.number("adam_b2", lo=0.0, hi=1.0, hi_open=True)
  s.positive("adam_eps")
  s.int_at_least("max_staleness", 0)
  s.int_at_least("checkpoint_every", 1)
  s.int_at_least("keep_checkpoints", 1)
  s.boolean("checkpoint_worker_tasks")
  s.int_at_least("snapshot_every", 0)  # 0: no snapshots
  if not isinstance(s.value("init_theta"), str):
    s.fail("init_theta", "a θ export directory, or '' (start from init_theta(seed))")
  s.boolean("require_clean_start")
  s.positive("mixing_lr_multiplier")
  if not isinstance(s.value("branch_from"), str):
    s.fail("branch_from", "another run's workdir, or '' (no branch)")
  s.int_at_least("branch_update", -1)  # -1: the parent's newest checkpoint
  if s.value("branch_from") and s.value("init_theta"):
    s.fail("branch_from", "'' when learner.init_theta is set: a run starts from one of the two")


def validate_workers(cfg) -> None:
  """Checks the `workers` section (raises util.config_check.ConfigError); N tasks per call also
  against the `task` section (`validate_tasks_per_call`)."""
  workers_cfg = cfg.workers
  s = Section(workers_cfg, "workers")
  s.int_at_least("num_workers", 0)  # 0: one in-process worker
  s.one_of("mode", WORKER_MODES)
  if not isinstance(s.value("ray_address"), str):
    s.fail("ray_address", "'' (start a local Ray), 'auto' or host:port")
  s.positive("cpus_per_worker")
  if not isinstance(s.value("jax_platforms"), str):
    s.fail("jax_platforms", "a JAX_PLATFORMS value such as 'cpu', or '' (JAX's choice)")
  s.int_at_least("tasks_per_call", 1)
  s.number("gpus_per_worker", lo=0.0)
  s.positive("result_timeout_sec")
  s.int_at_least("max_consecutive_errors", 0)  # 0: never stop on repeated errors
  validate_tasks_per_call(cfg)


def validate_tasks_per_call(cfg) -> None:
  """N > 1 tasks per call share one input size: every data set of the mixture must give the same
  (greyscale inputs do; colour CIFAR-10 beside grey sets does not)."""
  if int(cfg.workers.get("tasks_per_call", 1)) > 1 and not cfg.task.greyscale:
    Section(cfg.workers, "workers").fail(
      "tasks_per_call", "1 with task.greyscale = False (the tasks of one call need one input size)"
    )


# Never a test task: θ is selected on these.
VALIDATION_TASKS = ("alphabet_val", "imagenet_val", "omniglot_val", "two_moons")


def validate_validation(cfg) -> None:
  """Checks the `validation` section (raises util.config_check.ConfigError).

  Takes the whole config: validation uses the `evaluation` section's protocol settings
  (checked here too when validation is on), and `imagenet_val` / `alphabet_val` are validation
  tasks only if meta-training leaves their classes out (`task.validation_holdout`).
  """
  s = Section(cfg.validation, "validation")
  every = s.int_at_least("every", 0)  # 0: off
  task = s.one_of("task", VALIDATION_TASKS)
  s.int_at_least("seeds", 1)
  s.int_at_least("inner_steps", 0)
  s.int_at_least("eval_every", 1)
  s.int_at_least("seed", 0)
  s.one_of("mode", VALIDATION_MODES)
  from meta_unsup_rules.distributed import evaluator  # pylint: disable=g-import-not-at-top

  try:
    evaluator.parse_cpus(s.value("evaluator_cpus"))
  except (ValueError, TypeError):
    s.fail("evaluator_cpus", "'' (every CPU) or a CPU list such as '0' or '0,2-3'")
  if every == 0:
    return
  # pylint: disable=g-import-not-at-top  (imports JAX, runs none of it)
  from meta_unsup_rules.evaluation import config_section as evaluation_settings
  from meta_unsup_rules.evaluation import protocols

  evaluation_settings.validate_config(cfg.evaluation)
  s.one_of("readout", protocols.readout_names(cfg.evaluation))
  source = {"imagenet_val": "imagenet", "alphabet_val": "alphabet", "omniglot_val": "omniglot"}.get(task)
  held_out = cfg.task.validation_holdout is True and source in tuple(cfg.task.validation_holdout_sources)
  if source in tuple(cfg.task.datasets) and not held_out:
    s.fail(
      "task",
      f"a task whose classes are not meta-trained on: with task.datasets = {tuple(cfg.task.datasets)}, "
      f"{task} needs task.validation_holdout = True and {source!r} in task.validation_holdout_sources",
    )
