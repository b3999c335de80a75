"""The command-line conventions every command shares: --help exits 0 with the command's description,
bad input exits 2 with a message, the last stdout line is one JSON object, progress with an ETA.

`run(main)` is how a command starts (`python -m scripts.X` and the installed `meta-unsup-X` alike).
"""

from __future__ import annotations

import pathlib
import sys
from typing import Callable, Sequence

from absl import app, flags, logging

from meta_unsup_rules.tasks import data_dir as _data_dir
from meta_unsup_rules.util import files, progress


def list_under_help(name: str) -> None:
  """Lists flag `name` under the running command's --help (absl shows only the main module's key
  flags there: the flags defined here for every command would otherwise need --helpfull)."""
  flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def define_data_dir_flag() -> None:
  """--data_dir, for a command that loads data (tasks/data_dir.py: the flag, then the environment...)."""
  _data_dir.define_data_dir_flag()
  list_under_help("data_dir")


HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "-?")
CONFIG_SYNTAX = (
  "Every setting is a config field, given as --config.SECTION.FIELD=VALUE (e.g. "
  "--config.learner.num_updates=100); configs/paper.py lists each with its source."
)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing with this project's conventions: --help prints the command's description,
  examples and flags and exits 0; a bad flag (unknown, wrong type, missing config file, a --config
  field the config does not have) exits 2 with a message (scripts/config_args.py words the config's)."""
  from meta_unsup_rules.scripts import config_args  # pylint: disable=g-import-not-at-top  (it imports this)

  if any(a in HELP_ARGS for a in argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True)
    if "config" in flags.FLAGS:
      print(CONFIG_SYNTAX)
    sys.exit(0)
  argv = config_args.resolve_config_arguments(argv)
  try:
    return flags.FLAGS(list(argv))
  except (flags.UnrecognizedFlagError, AttributeError, KeyError) as e:  # ml_collections: a missing field
    fail(config_args.unrecognized_field_message(argv) or f"{e}\n(--help lists this command's flags)")
  except flags.Error as e:
    fail(f"{e}\n(--help lists this command's flags)")
  return []  # unreachable: fail exits


def run(main: Callable) -> None:
  """app.run(main) with `parse_flags`, for `python -m scripts.X` and the installed console command
  alike (pyproject.toml [project.scripts]): there the command's module is not __main__, so its
  docstring and flags are handed to --help explicitly."""
  module = sys.modules.get(main.__module__)
  for flag in flags.FLAGS.get_key_flags_for_module(main.__module__):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  if module is not None and module.__doc__ and sys.modules.get("__main__") is not module:
    sys.modules["__main__"].__doc__ = module.__doc__  # absl's usage prints __main__'s docstring
  app.run(main, flags_parser=parse_flags)


def emit_json(obj: dict) -> None:
  """The last stdout line of every script: one strict JSON object with its key figures.

  NaN and ±inf become null (a run resumed at its final step has no meta-loss), so any
  JSON parser reads the line.
  """
  print(files.dumps(obj, sort_keys=True), flush=True)


def fail(message: str) -> None:
  """Bad input: say what was wrong and what was expected, exit with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def readout_progress(desc: str, total: int):
  """(bar, log) for runner.run_evaluation: `log` gets one line per seed and readout point, logs it
  and advances the tqdm bar (util.progress: ETA on stderr, plain lines when it is not a terminal)."""
  bar = progress.bar(total, desc, unit="readout")

  def log(line: str) -> None:
    logging.info("%s", line)
    bar.update(1)

  return bar, log


def labelled_path(entry: str, flag: str, what: str, default_file: str) -> tuple[str, pathlib.Path]:
  """A LABEL=PATH flag entry → (label, file); a folder means its `default_file`. Exits 2 when malformed."""
  label, sep, path = entry.partition("=")
  if not sep or not label or not path:
    fail(f"--{flag} entry {entry!r}: expected LABEL={what}")
  p = pathlib.Path(path)
  return label, (p / default_file if p.is_dir() else p)
