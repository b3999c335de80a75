r"""Convert a workdir's old pickle checkpoints (`checkpoint_<step>.pkl`) to the `.npz` format.

  python -m scripts.convert_checkpoints --workdir=runs/old_run
  python -m scripts.convert_checkpoints --workdir=runs/local --keep_pkl

Each `.pkl` becomes `checkpoint_<step>.npz` beside it (verified by re-reading it), then the
`.pkl` is removed unless --keep_pkl. WARNING: reading a `.pkl` unpickles it, which can
execute code: use this only on this project's own old checkpoints (see
`distributed.legacy_checkpoint`). Last stdout line: the conversions as one JSON object.
"""

from absl import app, flags

from scripts import common

_WORKDIR = flags.DEFINE_string("workdir", None, "Meta-training workdir holding checkpoint_*.pkl.")
_KEEP_PKL = flags.DEFINE_bool("keep_pkl", False, "Keep the .pkl files after converting them.")


def main(argv):
  del argv
  if not _WORKDIR.value:
    common.fail("--workdir (a meta-training workdir holding checkpoint_<step>.pkl files) is required")
  from distributed import checkpoint, legacy_checkpoint

  try:
    done = legacy_checkpoint.convert_workdir(_WORKDIR.value, remove=not _KEEP_PKL.value)
  except checkpoint.CheckpointError as e:
    common.fail(str(e))
  for d in done:
    print(f"{d['from']} ({d['bytes_before']:,} bytes) -> {d['to']} ({d['bytes_after']:,} bytes)")
  common.emit_json({"workdir": _WORKDIR.value, "converted": done})


if __name__ == "__main__":
  app.run(main)
