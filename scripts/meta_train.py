r"""Meta-train the unsupervised update rule; resumes from --workdir automatically.

  python -m scripts.meta_train --config=configs/local.py --workdir=runs/local
  python -m scripts.meta_train --config=configs/tiny.py --workdir=runs/tiny --config.learner.num_updates=8
  python -m scripts.meta_train --config=configs/paper.py --workdir=runs/paper --ray_address=auto
  python -m scripts.meta_train --config=configs/local.py --workdir=runs/finetune \
      --config.learner.init_theta=checkpoints/local --config.learner.learning_rates="(3e-4,1e-4,2e-5)"
"""
from absl import app, flags
from ml_collections import config_flags

from scripts import common

_CONFIG = config_flags.DEFINE_config_file("config", "configs/local.py", "Config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics.jsonl and the θ export.")
_RAY_ADDRESS = flags.DEFINE_string("ray_address", None, "Join this Ray cluster ('auto' or host:port).")
_MAX_MINUTES = flags.DEFINE_float("max_minutes", None, "Stop (with a checkpoint) after this long.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "No progress line on stderr.")


def main(argv):
  del argv
  cfg = _CONFIG.value
  if not _WORKDIR.value:
    common.fail("--workdir is required (checkpoints, metrics.jsonl and theta/ go there)")
  if _RAY_ADDRESS.value is not None:
    cfg.workers.ray_address = _RAY_ADDRESS.value
  if cfg.learner.num_updates < 1 or cfg.learner.batch_size < 1:
    common.fail(f"learner.num_updates and learner.batch_size must be >= 1, got "
                f"{cfg.learner.num_updates} and {cfg.learner.batch_size}")
  from meta_objective import ridge  # importing JAX is fine; running it before Ray is not
  mo = cfg.meta_objective
  if mo.loss not in ridge.LOSSES:
    common.fail(f"meta_objective.loss must be one of {ridge.LOSSES}, got {mo.loss!r}")
  if mo.get("targets", ridge.TARGETS[0]) not in ridge.TARGETS:
    common.fail(f"meta_objective.targets must be one of {ridge.TARGETS}, got {mo.targets!r}")
  # Ray must be up before this process runs any JAX.
  from distributed import pools, trainer
  if cfg.workers.num_workers > 0 and cfg.workers.get("mode", "ray") == "ray":
    pools.init_ray(cfg)
  from distributed import checkpoint
  from learned_update import ExportError, export
  from tasks import DataError
  export.configure_jax()
  try:
    summary = trainer.meta_train(cfg, _WORKDIR.value, progress=not _NO_PROGRESS.value,
                                 max_seconds=None if _MAX_MINUTES.value is None else 60 * _MAX_MINUTES.value)
  except (checkpoint.CheckpointError, DataError, ExportError,
          pools.WorkerConfigError) as e:  # the message, not the (remote) traceback
    common.fail(str(e))
  common.emit_json(summary)


if __name__ == "__main__":
  app.run(main)
