"""The config on the command line: `--config=FILE` (a path or a config name), `--config.SECTION.FIELD=V`,
the short flags that alias a field (`--seeds`, `--task`, ...), the config check at start, and what a
run's lineage names as its config.

Precedence of a field's value, highest first: --config.<field>  >  --<alias>  >  the command's own
default  >  the config file. An alias given together with an explicit --config.<field> is ignored,
with a warning.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import pathlib
import sys
from typing import Any, Callable, Sequence

from absl import flags, logging
from ml_collections import config_flags

from meta_unsup_rules import configs as _configs
from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import config_check
from meta_unsup_rules.util.config_check import ConfigError

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


_CONFIG_FLAGS: list[str] = []  # the config-file flags this process defined


def define_config_file(name: str, default: str, help_string: str):
  """config_flags.DEFINE_config_file with a bare config name resolved (resolve_config_file); its
  command-line value is resolved and checked by `resolve_config_arguments` before flags are parsed,
  and an override of a field the config does not have is worded by `unrecognized_field_message`."""
  try:
    holder = config_flags.DEFINE_config_file(name, resolve_config_file(default), help_string)
  except (AttributeError, KeyError) as e:
    _unknown_field(name, default, e)
  _CONFIG_FLAGS.append(name)
  cli.list_under_help(name)
  return holder


def resolve_config_arguments(argv: Sequence[str]) -> list[str]:
  """argv with each --<config flag>=NAME resolved to its file; a file that does not exist exits 2
  naming the package's configs."""
  out = list(argv)
  for i, arg in enumerate(out):
    for name in _CONFIG_FLAGS:
      if arg.startswith(f"--{name}="):
        value = resolve_config_file(arg.split("=", 1)[1])
        if not pathlib.Path(str(value).partition(":")[0]).is_file():
          known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.py") if not p.stem.startswith("_")))
          cli.fail(
            f"--{name}={value}: no such config file; expected a path, or a config of the package ({known})"
          )
        out[i] = f"--{name}={value}"
  return out


def unrecognized_field_message(argv: Sequence[str]) -> str | None:
  """For an override of a field the config does not have (--<config flag>.<path>, a misspelling):
  the field and the nearest valid ones; None when every override names a field."""
  for name in _CONFIG_FLAGS:
    given = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    default = flags.FLAGS[name].default_as_str.strip("'\"") if name in flags.FLAGS else ""
    cfg = _load_config_file(given[-1] if given else default)
    message = None if cfg is None else unknown_field_message(cfg, _override_paths(name, argv), name)
    if message is not None:
      return message
  return None


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
  cli.fail(message)


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
    cli.list_under_help(name)


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
      cli.fail(f"--{name}: {e}")
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
      cli.fail(f"the config has no field {field} (configs/paper.py defines every field)")
    except TypeError as e:
      cli.fail(f"{field} = {value!r}: {e}")
  return cfg


# ----------------------------------------------------------------------- the check at start

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
EVALUATION_SECTIONS = (
  "base_model",
  "rule",
  "unroll",
  "compatible",
  "meta_objective",
  "evaluation",
  "baselines",
)


def check_config(cfg, sections: Sequence[str]) -> None:
  """The registered checks of the named sections (util.config_check.SECTION_CHECKS)."""
  config_check.check_sections(cfg, sections)


def validate(cfg, sections: Sequence[str]) -> None:
  """The config check at start: call before anything is written (workdir, Ray, outputs).

  A bad value ends the command with exit status 2 and a message naming the field, its value and
  what is allowed.
  """
  try:
    check_config(cfg, sections)
  except ConfigError as e:
    cli.fail(str(e))


def explicit_fields(config_flag: str = "config") -> tuple[str, ...]:
  """The field paths given on the command line as --<config_flag>.<path>=value."""
  return tuple(sorted(config_flags.get_override_values(flags.FLAGS[config_flag])))


def config_source(config_flag: str = "config") -> str:
  """The config file and its explicit overrides as given, e.g. "configs/oja.py --config.seed=3"
  (what a θ's lineage names as its run's config)."""
  name = config_flags.get_config_filename(flags.FLAGS[config_flag])
  overrides = config_flags.get_override_values(flags.FLAGS[config_flag])
  return " ".join([name, *(f"--{config_flag}.{k}={v!r}" for k, v in sorted(overrides.items()))])
