"""What every entry point shares: one JSON line at the end, clear errors with exit status 2,
the flags that alias config fields, and the config check at start.

Length (~430 lines): these are the command-line conventions of all eight commands (exit
status 2 with a message, the last stdout line, flag aliases, progress); kept together, a
convention changes in one place and the commands cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import pathlib
import sys
from typing import Any, Callable, Sequence

from absl import app, flags, logging
from ml_collections import config_flags

from meta_unsup_rules import configs as _configs
from meta_unsup_rules.evaluation import setup as evaluation_setup
from meta_unsup_rules.tasks import data_dir as _data_dir
from meta_unsup_rules.util import files, progress
from meta_unsup_rules.util.config_check import ConfigError


def list_under_help(name: str) -> None:
  """Lists flag `name` under the running command's --help (absl shows only the main module's key
  flags there: the flags defined here for every command would otherwise need --helpfull)."""
  flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


_data_dir.define_data_dir_flag()  # --data_dir for every entry point
list_under_help("data_dir")


HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "-?")
CONFIG_SYNTAX = (
  "Every setting is a config field, given as --config.SECTION.FIELD=VALUE (e.g. "
  "--config.learner.num_updates=100); configs/paper.py lists each with its source."
)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing with this project's conventions: --help prints the command's description,
  examples and flags and exits 0; a bad flag (unknown, wrong type, missing config file, bad
  --config.* value) exits 2 with absl's message."""
  if any(a in HELP_ARGS for a in argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True)
    if "config" in flags.FLAGS:
      print(CONFIG_SYNTAX)
    sys.exit(0)
  try:
    return flags.FLAGS(list(argv))
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


# ------------------------------------------------------------------------------ the config flag


CONFIGS_DIR = pathlib.Path(_configs.__file__).resolve().parent  # the package's configs/


def resolve_config_file(argument: str) -> str:
  """A config-file flag value (path[:argument]) whose path does not exist but names one of the
  package's configs ("local", "local.py" or "configs/local.py") → that file; else unchanged.
  So --config=local works from any directory, and a path still means the path."""
  path, sep, arg = str(argument).partition(":")
  if not path or pathlib.Path(path).exists():
    return argument
  rel = path[len("configs/") :] if path.startswith("configs/") else path
  candidate = CONFIGS_DIR / (rel if rel.endswith(".py") else rel + ".py")
  if "/" not in rel and candidate.is_file():
    return str(candidate) + sep + arg
  return argument


def define_config_file(name: str, default: str, help_string: str):
  """config_flags.DEFINE_config_file, with a bare config name resolved (resolve_config_file), and
  an override of a field the config does not have (`--config.evaluation.nosuch=1`, a misspelling)
  exits 2 naming the field and the nearest valid ones, instead of ml_collections' traceback.
  Overrides are checked when the default is parsed (here, at definition) and again when --config
  names another file (at flag parsing)."""
  try:
    holder = config_flags.DEFINE_config_file(name, resolve_config_file(default), help_string)
  except (AttributeError, KeyError) as e:
    _unknown_field(name, default, e)
  list_under_help(name)
  flag = flags.FLAGS[name]
  parse = flag._parse  # pylint: disable=protected-access  (the one hook ml_collections offers)

  def checked_parse(argument):
    argument = resolve_config_file(argument)
    path = str(argument).partition(":")[0]
    if not pathlib.Path(path).is_file():
      known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.py") if not p.stem.startswith("_")))
      fail(f"--{name}={argument}: no such config file; expected a path, or a config of the package ({known})")
    try:
      return parse(argument)
    except (AttributeError, KeyError) as e:
      _unknown_field(name, argument, e)

  flag._parse = checked_parse  # pylint: disable=protected-access
  return holder


def _override_paths(name: str, argv: Sequence[str]) -> list[str]:
  """The field paths of the --<name>.<path>[=value] arguments in argv."""
  out = []
  for arg in argv[1:]:
    for prefix in (f"--{name}.", f"--no{name}."):
      if arg.startswith(prefix):
        out.append(arg[len(prefix) :].split("=", 1)[0])
  return out


def _load_config_file(argument: str):
  """The config a config-file flag value names (path[:argument]), or None if it does not load."""
  path, _, arg = str(argument).partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_config_for_message", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
  except Exception:  # pylint: disable=broad-except  (only used to word an error message)
    return None


def unknown_field_message(cfg, paths: Sequence[str], flag: str = "config") -> str | None:
  """What is wrong with the first of `paths` that `cfg` does not have, with the nearest valid
  fields (difflib), or None when every path exists."""
  for path in paths:
    node, walked = cfg, []
    for part in path.split("."):
      if not hasattr(node, "keys"):
        return f"--{flag}.{path}: {'.'.join(walked)} is a value, not a section with fields"
      keys = sorted(node.keys())
      if part not in keys:
        # The closest by similarity; for a name like none of them, still the three least unlike it.
        near = difflib.get_close_matches(part, keys, n=3, cutoff=0.5) or difflib.get_close_matches(
          part, keys, n=3, cutoff=0.0
        )
        prefix = "".join(f"{w}." for w in walked)
        return (
          f"--{flag}.{path}: the config has no field {prefix}{part}; nearest valid: "
          + ", ".join(prefix + k for k in near)
          + f" (all {len(keys)}: {', '.join(keys)})"
        )
      walked.append(part)
      node = node[part]
  return None


def _unknown_field(name: str, argument: str, error: Exception) -> None:
  cfg = _load_config_file(argument)
  message = None if cfg is None else unknown_field_message(cfg, _override_paths(name, sys.argv), name)
  if message is None:
    raise error
  fail(message)


# ---------------------------------------------------------------- config fields and aliases
#
# Every setting is a config field, changed with --config.<section>.<field>=value; the config
# files (configs/paper.py) hold every value. The short flags below only alias a field: they
# default to None and are applied when given. Precedence, highest first:
#   --config.<field>  >  --<alias>  >  the script's own default  >  the config file.
# An alias given together with an explicit --config.<field> is ignored, with a warning.


def _strings(value) -> tuple:
  return (tuple(v.strip() for v in value if v.strip()),)


def _episodic(value) -> tuple:
  try:
    n_way, k_shot, n_query, episodes = (int(v) for v in value)
  except ValueError as e:
    raise ValueError(f"four integers n_way,k_shot,n_query,episodes are expected, got {value}") from e
  return n_way, k_shot, n_query, episodes


def _fractions(value) -> tuple:
  try:
    return (tuple(float(v) for v in value),)
  except ValueError as e:
    raise ValueError(f"comma-separated numbers are expected, got {value}") from e


@dataclasses.dataclass(frozen=True)
class Alias:
  """A flag that sets config fields: `parse` maps its value to one value per field."""

  fields: tuple[str, ...]
  define: Callable
  help: str
  parse: Callable[[Any], tuple] = lambda value: (value,)


ALIASES = {
  "theta": Alias(("evaluation.theta",), flags.DEFINE_string, "θ export directory, or 'random'."),
  "task": Alias(("evaluation.task",), flags.DEFINE_string, "Evaluation task (tasks.eval_tasks.EVAL_TASKS)."),
  "inner_steps": Alias(
    ("evaluation.inner_steps",), flags.DEFINE_integer, "Unlabelled minibatches per run (N)."
  ),
  "eval_every": Alias(
    ("evaluation.eval_every",), flags.DEFINE_integer, "Steps between readouts (M); 0: max(1, N // 5)."
  ),
  "seeds": Alias(("evaluation.seeds",), flags.DEFINE_integer, "Seeds cfg.seed, cfg.seed+1, ..."),
  "methods": Alias(
    ("evaluation.methods",),
    flags.DEFINE_list,
    "Comma-separated subset of evaluation.runner.METHODS.",
    _strings,
  ),
  "max_test": Alias(("evaluation.max_test",), flags.DEFINE_integer, "Test examples scored (fixed subset)."),
  "support_per_class": Alias(
    ("evaluation.support_per_class",), flags.DEFINE_integer, "Labelled examples per class (fewshot)."
  ),
  "protocol": Alias(
    ("evaluation.protocol",), flags.DEFINE_string, "fewshot | episodic | linear_probe | semi_supervised."
  ),
  "episodic": Alias(
    ("evaluation.n_way", "evaluation.k_shot", "evaluation.n_query", "evaluation.episodes"),
    flags.DEFINE_list,
    "n_way,k_shot,n_query,episodes of --protocol=episodic.",
    _episodic,
  ),
  "probe_max_train": Alias(
    ("evaluation.probe_max_train",), flags.DEFINE_integer, "linear_probe: labelled train examples, at most."
  ),
  "label_fractions": Alias(
    ("evaluation.label_fractions",),
    flags.DEFINE_list,
    "semi_supervised: fractions of each class's train labels.",
    _fractions,
  ),
  "seed": Alias(("seed",), flags.DEFINE_integer, "Seed (base model, θ for 'random', stream)."),
  "ray_address": Alias(
    ("workers.ray_address",), flags.DEFINE_string, "Join this Ray cluster ('auto' or host:port)."
  ),
}
# scripts.evaluate and the commands sharing its flags (sweep, experiments.tools.heldout_curve, rule_geometry).
EVALUATION_ALIASES = (
  "theta",
  "task",
  "inner_steps",
  "eval_every",
  "seeds",
  "methods",
  "max_test",
  "support_per_class",
  "protocol",
  "episodic",
  "probe_max_train",
  "label_fractions",
)


def define_aliases(names: Sequence[str]) -> None:
  """Defines the alias flags `names`, each once per process (scripts import each other)."""
  for name in names:
    if name not in flags.FLAGS:
      alias = ALIASES[name]
      fields = ", ".join(f"--config.{f}" for f in alias.fields)
      alias.define(name, None, f"{alias.help} Alias of {fields} (which wins if both are given).")
    list_under_help(name)


def _set_field(cfg, field: str, value) -> None:
  *parents, leaf = field.split(".")
  node = cfg
  for p in parents:
    node = node[p]
  if leaf not in node:
    raise KeyError(field)
  node[leaf] = tuple(value) if isinstance(value, list) else value


def apply_aliases(
  cfg, aliases: Sequence[str], script_defaults: dict | None = None, config_flag: str = "config"
):
  """Applies the script's defaults ({field: value}) and the given alias flags to `cfg` in place.

  Neither touches a field overridden explicitly with --config.<field> (see the precedence
  above). Returns `cfg`; a malformed alias value or a config without the field exits 2.
  """
  explicit = config_flags.get_override_values(flags.FLAGS[config_flag])
  updates = {f: v for f, v in (script_defaults or {}).items() if f not in explicit}
  for name in aliases:
    value = flags.FLAGS[name].value
    if value is None:
      continue
    alias = ALIASES[name]
    try:
      values = alias.parse(value)
    except ValueError as e:
      fail(f"--{name}: {e}")
    for field, v in zip(alias.fields, values):
      if field in explicit:
        logging.warning(
          "--%s is ignored for %s: --config.%s=%r was given explicitly and wins",
          name,
          field,
          field,
          explicit[field],
        )
      else:
        updates[field] = v
  for field, value in updates.items():
    try:
      _set_field(cfg, field, value)
    except (KeyError, AttributeError):
      fail(f"the config has no field {field} (configs/paper.py defines every field)")
    except TypeError as e:
      fail(f"{field} = {value!r}: {e}")
  return cfg


# ----------------------------------------------------------------------- validation at start

META_TRAIN_SECTIONS = (
  "base_model",
  "rule",
  "unroll",
  "compatible",
  "meta_objective",
  "task",
  "learner",
  "workers",
  "validation",
)
EVALUATION_SECTIONS = evaluation_setup.SECTIONS


def _validators() -> dict:
  """{section: check of the whole config}; each package checks its own section."""
  # pylint: disable=g-import-not-at-top  (JAX is imported here, not run: Ray may start after)
  from meta_unsup_rules.distributed import settings as distributed_settings
  from meta_unsup_rules.tasks import meta_train

  return {
    **evaluation_setup.validators(),  # base_model, rule, unroll, compatible, meta_objective, ...
    "task": lambda c: meta_train.validate_config(c.task),
    "learner": lambda c: distributed_settings.validate_learner(c.learner),
    "workers": lambda c: (
      distributed_settings.validate_workers(c.workers),
      distributed_settings.validate_tasks_per_call(c),
    ),
    "validation": distributed_settings.validate_validation,  # with the evaluation section it uses
  }


def check_config(cfg, sections: Sequence[str]) -> None:
  """Checks the named sections of `cfg`; raises util.config_check.ConfigError."""
  validators = _validators()
  for name in sections:
    if name in validators and name != "compatible" and name not in cfg:
      raise ConfigError(name, None, "a config section (configs/paper.py defines every section)")
    validators[name](cfg)


def validate(cfg, sections: Sequence[str]) -> None:
  """The config check at start: call before anything is written (workdir, Ray, outputs).

  A bad value ends the script with exit status 2 and a message naming the field, its
  value and what is allowed.
  """
  try:
    check_config(cfg, sections)
  except ConfigError as e:
    fail(str(e))


def explicit_fields(config_flag: str = "config") -> tuple[str, ...]:
  """The field paths given on the command line as --<config_flag>.<path>=value."""
  return tuple(sorted(config_flags.get_override_values(flags.FLAGS[config_flag])))


def config_source(config_flag: str = "config") -> str:
  """The config file and its explicit overrides as given, e.g. "configs/oja.py --config.seed=3"
  (what a θ's lineage names as its run's config)."""
  name = config_flags.get_config_filename(flags.FLAGS[config_flag])
  overrides = config_flags.get_override_values(flags.FLAGS[config_flag])
  return " ".join([name, *(f"--{config_flag}.{k}={v!r}" for k, v in sorted(overrides.items()))])


# ------------------------------------------------------------------- the evaluation set-up

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]  # the checkout (installed: the package folder)
_ROOT = CHECKOUT


def define_evaluation_flags(config_help: str, out_help: str | None = None, aliases=EVALUATION_ALIASES):
  """The flags of an evaluating command: --config (default configs/local.py), the alias flags
  `aliases` and, given `out_help`, --out_dir. Returns (the config holder, the --out_dir holder)."""
  config = define_config_file("config", str(_ROOT / "configs" / "local.py"), config_help)
  define_aliases(aliases)
  out_dir = None
  if out_help is not None:
    out_dir = flags.DEFINE_string("out_dir", None, out_help)
    list_under_help("out_dir")
  return config, out_dir


def set_up_evaluation(cfg, theta: str | None = None, readouts: bool = True):
  """evaluation.setup.set_up on `cfg` (the --config value with the aliases applied) and this
  command's explicit --config overrides; bad input exits 2 with its message."""
  overrides = config_flags.get_override_values(flags.FLAGS["config"])
  try:
    return evaluation_setup.set_up(cfg, overrides, theta=theta, readouts=readouts)
  except evaluation_setup.SetupError as e:
    fail(str(e))


def resolve_theta(setup, theta_arg: str):
  """(theta_fn, cfg) of another θ against an evaluation set-up (EvaluationSetup.resolve); a missing,
  mismatched or invalid export exits 2 with its message."""
  try:
    return setup.resolve(theta_arg)
  except evaluation_setup.SetupError as e:
    fail(str(e))
