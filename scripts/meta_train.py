r"""Meta-train the unsupervised update rule; resumes from --workdir automatically.

  python -m scripts.meta_train --config=configs/local.py --workdir=runs/local
  python -m scripts.meta_train --config=configs/tiny.py --workdir=runs/tiny --config.learner.num_updates=8
  python -m scripts.meta_train --config=configs/paper.py --workdir=runs/paper --ray_address=auto
  python -m scripts.meta_train --config=configs/paper_track.py --workdir=runs/finetune \
      --config.learner.init_theta=checkpoints/paper_track_u1200 \
      --config.learner.learning_rates="(3e-4,1e-4,2e-5)"

Every setting is a config field (`--config.<section>.<field>=value`); --ray_address is an
alias of `workers.ray_address` (an explicit --config.workers.ray_address wins). The config
is checked at start, before Ray is started or --workdir is created: a bad value exits with
status 2 naming the field, its value and what is allowed, and leaves the workdir untouched.
--workdir, --max_minutes, --stop_at_update and --no_progress are run control (where, how long this session
runs, what it prints), not settings of the run: a resumed run may use other values. A resumed run keeps
the settings it was started with: only run-control fields (learner.num_updates, the checkpoint, keep
and snapshot cadences, validation.every / mode / evaluator_cpus, where and on how many workers it
runs, data_dir; distributed/run_config.py) may differ, and their changes are recorded; any other
difference exits 2 listing the fields (stored → given).
One trainer per workdir (a second exits 2 naming the first's PID and host). Exit status: 0 when the
session ended by itself (done, --max_minutes, --stop_at_update) or the run was already finished; 2 on
bad input; 130 after Ctrl-C and 143 after SIGTERM, each with a final checkpoint written.
"""

import signal
import sys

from absl import flags

from meta_unsup_rules.scripts import cli, config_args
from meta_unsup_rules.util import jax_setup

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

cli.define_data_dir_flag()  # this command loads data
_CONFIG = config_args.define_config_file("config", "configs/local.py", "Config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics.jsonl and the θ export.")
config_args.define_aliases(("ray_address",))
_MAX_MINUTES = flags.DEFINE_float("max_minutes", None, "Stop (with a checkpoint) after this long.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "No progress line on stderr.")
_STOP_AT_UPDATE = flags.DEFINE_integer(
  "stop_at_update",
  None,
  "Stop (with a checkpoint) once θ has this many updates; the learning-rate schedule still spans "
  "learner.num_updates (equal-budget ablations from one start).",
)


def main(argv):
  del argv
  if not _WORKDIR.value:
    cli.fail("--workdir is required (checkpoints, metrics.jsonl and theta/ go there)")
  cfg = config_args.apply_aliases(_CONFIG.value, ("ray_address",))
  config_args.validate(cfg, config_args.META_TRAIN_SECTIONS)  # imports JAX (fine), runs none of it
  # Ray must be up before this process runs any JAX.
  from meta_unsup_rules.distributed import pools, ray_pool, trainer

  if cfg.workers.num_workers > 0 and cfg.workers.mode == "ray":
    try:
      ray_pool.init_ray(cfg)
    except ray_pool.RayAddressError as e:
      cli.fail(str(e))
  from meta_unsup_rules.distributed import checkpoint, run_config
  from meta_unsup_rules.learned_update import ExportError
  from meta_unsup_rules.tasks import DataError
  from meta_unsup_rules.util import workdir_lock

  jax_setup.configure_jax()
  try:
    summary = trainer.meta_train(
      cfg,
      _WORKDIR.value,
      progress=not _NO_PROGRESS.value,
      max_seconds=None if _MAX_MINUTES.value is None else 60 * _MAX_MINUTES.value,
      stop_at_step=_STOP_AT_UPDATE.value,
      config_source=config_args.config_source(),
      explicit_fields=config_args.explicit_fields(),
    )
  except KeyboardInterrupt:  # before the run's loop began (its loop turns Ctrl-C into a checkpoint)
    sys.exit(EXIT_SIGINT)
  except (
    run_config.ConfigDrift,
    checkpoint.CheckpointError,
    DataError,
    ExportError,
    pools.WorkerConfigError,
    workdir_lock.LockHeld,
  ) as e:  # the message, not the (remote) traceback
    cli.fail(str(e))
  cli.emit_json(summary)
  # Stopped by a signal: a checkpoint was written, but the run did not end (128 + the signal).
  if summary.get("stopped_by") == "SIGINT":
    sys.exit(EXIT_SIGINT)
  if summary.get("stopped_by") == "SIGTERM":
    sys.exit(EXIT_SIGTERM)


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
