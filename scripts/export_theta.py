r"""Export θ (θ-only, with its config and a training summary) from a meta-training checkpoint.

  python -m scripts.export_theta --workdir=runs/local --out=runs/local_theta
  python -m scripts.export_theta --workdir=runs/local --out=/tmp/theta_100 --step=100

The export is what `scripts.evaluate --theta=DIR` reads. Without --step the newest readable
checkpoint is used (an unreadable newer one is skipped with a warning naming it); θ is rebuilt
from the checkpoint's own config. Last stdout line: the summary as one JSON object.
"""

from absl import flags

from meta_unsup_rules.scripts import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Meta-training workdir holding checkpoints.")
_OUT = flags.DEFINE_string("out", None, "Export directory (theta.npz, config.json, summary.json).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")


def main(argv):
  del argv
  if not _WORKDIR.value or not _OUT.value:
    cli.fail("--workdir (a meta-training workdir) and --out (export directory) are required")
  from meta_unsup_rules.distributed import checkpoint, provenance

  try:
    summary = provenance.export_checkpoint(_WORKDIR.value, _OUT.value, _STEP.value)
  except checkpoint.CheckpointError as e:
    cli.fail(str(e))
  cli.emit_json({"out": _OUT.value, **summary})


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
