r"""Score a meta-training run's θ snapshots on its validation task, beside the trainer (async validation).

  python -m scripts.validate --workdir=runs/paper_track            # score what is due and unscored
  python -m scripts.validate --workdir=runs/paper_track --follow   # and wait for more while it trains
  python -m scripts.validate --workdir=experiments/paper_track/run --every_snapshot   # every snapshot
  python -m scripts.validate --workdir=runs/paper_track --newest_first   # the latest θ first

A run with `--config.validation.mode=async` starts this itself (`--follow`) and goes on training
while it scores (distributed/evaluator.py). Each scored snapshot appends one record to
<workdir>/validation.jsonl (the fields inline validation writes into metrics.jsonl: val_accuracy,
val_sem, val_per_seed, val_effective_rank, ...) and updates <workdir>/best/ when it is the best so far.
Restarted, it scores only what was not scored. The settings are the snapshot's own config's
`validation` section (task, seeds, inner steps, readout). Last stdout line: {"scored": N, ...}.
"""

from absl import flags

from meta_unsup_rules.scripts import cli

cli.define_data_dir_flag()  # this command loads data
_WORKDIR = flags.DEFINE_string("workdir", None, "Meta-training workdir holding snapshots/ and config.json.")
_FOLLOW = flags.DEFINE_bool("follow", False, "Keep waiting for new snapshots while the run's trainer runs.")
_EVERY_SNAPSHOT = flags.DEFINE_bool(
  "every_snapshot",
  False,
  "Score every snapshot, not only those of the validation cadence (validation.every).",
)
_NEWEST_FIRST = flags.DEFINE_bool(
  "newest_first", False, "Score the newest due snapshot first (the earlier ones fill in the curve after)."
)
_POLL = flags.DEFINE_float("poll_seconds", 5.0, "With --follow: seconds between looks for new snapshots.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Accepted for symmetry with scripts.meta_train.")


def main(argv):
  del argv
  if not _WORKDIR.value:
    cli.fail("--workdir is required (a meta-training workdir)")
  from meta_unsup_rules.distributed import evaluator, validation
  from meta_unsup_rules.learned_update import ExportError
  from meta_unsup_rules.util import jax_setup, workdir_lock

  jax_setup.configure_jax()
  try:
    ev = evaluator.Evaluator(
      _WORKDIR.value, every_snapshot=_EVERY_SNAPSHOT.value, newest_first=_NEWEST_FIRST.value
    )
    scored = ev.run(follow=_FOLLOW.value, poll_sec=_POLL.value, log=lambda line: print(line, flush=True))
  except workdir_lock.LockHeld as e:
    print(f"nothing to do: {e}", flush=True)  # an evaluator of this workdir already runs
    cli.emit_json({"scored": 0, "already_running": True})
    return
  except (FileNotFoundError, ExportError) as e:
    cli.fail(str(e))
  best = validation.best_on_disk(_WORKDIR.value)
  cli.emit_json({"scored": scored, "best": best})


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
