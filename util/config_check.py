"""Config validation at start: each package checks its own section before anything is written.

A bad value raises `ConfigError` naming the field, the value and what is allowed; the
scripts turn it into exit status 2. `Section` keeps the checks one line each.
"""

from __future__ import annotations

import math
from typing import Any, Sequence


class ConfigError(ValueError):
  """A config value outside what the code accepts."""

  def __init__(self, field: str, value: Any, allowed: str):
    self.field, self.value, self.allowed = field, value, allowed
    super().__init__(f"config field {field} = {value!r} is not allowed: expected {allowed}")


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _within(v, lo, hi, lo_open: bool, hi_open: bool) -> bool:
  return (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or (v < hi if hi_open else v <= hi))


def _bounds_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
  """The bounds as text for a message (" > 0 and <= 1"); "" when there are none."""
  parts = ([] if lo is None else [f"{'>' if lo_open else '>='} {lo}"]) + (
    [] if hi is None else [f"{'<' if hi_open else '<='} {hi}"]
  )
  return (" " + " and ".join(parts)) if parts else ""


class Section:
  """Checks on one config section (an ml_collections.ConfigDict or anything with `.get`)."""

  def __init__(self, cfg, prefix: str):
    self.cfg, self.prefix = cfg, prefix

  def value(self, name: str):
    return self.cfg.get(name) if hasattr(self.cfg, "get") else getattr(self.cfg, name)

  def fail(self, name: str, allowed: str):
    raise ConfigError(f"{self.prefix}.{name}", self.value(name), allowed)

  def int_at_least(self, name: str, lo: int) -> int:
    v = self.value(name)
    if not _is_int(v) or v < lo:
      self.fail(name, f"an integer >= {lo}")
    return v

  def number(
    self,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
  ) -> float:
    """A finite number in [lo, hi] (`lo_open` / `hi_open` exclude that bound)."""
    v = self.value(name)
    if not (_is_number(v) and math.isfinite(v) and _within(v, lo, hi, lo_open, hi_open)):
      self.fail(name, "a finite number" + _bounds_text(lo, hi, lo_open, hi_open))
    return float(v)

  def positive(self, name: str) -> float:
    return self.number(name, lo=0.0, lo_open=True)

  def one_of(self, name: str, choices: Sequence) -> Any:
    v = self.value(name)
    if v not in tuple(choices):
      self.fail(name, f"one of {tuple(choices)}")
    return v

  def boolean(self, name: str) -> bool:
    v = self.value(name)
    if not isinstance(v, bool):
      self.fail(name, "True or False")
    return v

  def ints(self, name: str, lo: int, increasing: bool = False, min_len: int = 1) -> tuple:
    v = self.value(name)
    ok = isinstance(v, (list, tuple)) and len(v) >= min_len and all(_is_int(x) and x >= lo for x in v)
    ok = ok and (not increasing or all(a < b for a, b in zip(v, v[1:])))
    if not ok:
      order = ", strictly increasing" if increasing else ""
      self.fail(name, f"a sequence of at least {min_len} integers >= {lo}{order}")
    return tuple(v)

  def numbers(
    self,
    name: str,
    lo: float | None = None,
    lo_open: bool = False,
    min_len: int = 1,
    increasing: bool = False,
    hi: float | None = None,
    hi_open: bool = False,
  ) -> tuple:
    v = self.value(name)
    ok = isinstance(v, (list, tuple)) and len(v) >= min_len
    ok = ok and all(_is_number(x) and math.isfinite(x) and _within(x, lo, hi, lo_open, hi_open) for x in v)
    ok = ok and (not increasing or all(a < b for a, b in zip(v, v[1:])))
    if not ok:
      order = ", strictly increasing" if increasing else ""
      self.fail(
        name,
        f"a sequence of at least {min_len} finite numbers{_bounds_text(lo, hi, lo_open, hi_open)}{order}",
      )
    return tuple(float(x) for x in v)

  def subset(self, name: str, choices: Sequence) -> tuple:
    """A non-empty sequence of distinct entries of `choices` (e.g. methods, data sets)."""
    v = self.value(name)
    ok = isinstance(v, (list, tuple)) and len(v) >= 1 and all(x in tuple(choices) for x in v)
    if not (ok and len(set(v)) == len(v)):
      self.fail(name, f"a non-empty sequence of distinct entries of {tuple(choices)}")
    return tuple(v)

  def weights(self, name: str, length: int | None = None) -> tuple:
    """Non-negative, finite, not all zero (and `length` long if given)."""
    v = self.numbers(name, lo=0.0)
    if sum(v) <= 0 or (length is not None and len(v) != length):
      self.fail(
        name,
        "non-negative finite weights, not all zero"
        + ("" if length is None else f", one per entry ({length})"),
      )
    return v

  def ordered(self, lo_name: str, hi_name: str) -> None:
    if self.value(lo_name) > self.value(hi_name):
      raise ConfigError(
        f"{self.prefix}.{lo_name}",
        self.value(lo_name),
        f"<= {self.prefix}.{hi_name} = {self.value(hi_name)!r}",
      )


# ---------------------------------------------------------------------- the one registry of checks
#
# Each package checks its own config section; this table says which function checks which section,
# by name, so that every caller (an evaluating command, meta-training, a θ export's sections) uses the
# same checks without this bottom layer importing the packages above it. A check takes the whole
# config when it reads other sections too ("whole"), else the section.
SECTION_CHECKS = {
  "base_model": ("meta_unsup_rules.base_models.mlp", "validate_config", "section"),
  "rule": ("meta_unsup_rules.learned_update.rule", "validate_config", "section"),
  "unroll": ("meta_unsup_rules.learned_update.unroll", "validate_config", "section"),
  "compatible": ("meta_unsup_rules.learned_update.unroll", "validate_compatible", "whole"),
  "meta_objective": ("meta_unsup_rules.meta_objective.ridge", "validate_config", "section"),
  "evaluation": ("meta_unsup_rules.evaluation.config_section", "validate_config", "section"),
  "baselines": ("meta_unsup_rules.base_models.baselines.settings", "validate_config", "section"),
  "task": ("meta_unsup_rules.tasks.meta_train", "validate_config", "section"),
  "learner": ("meta_unsup_rules.distributed.settings", "validate_learner", "section"),
  "workers": ("meta_unsup_rules.distributed.settings", "validate_workers", "whole"),
  "validation": ("meta_unsup_rules.distributed.settings", "validate_validation", "whole"),
}
# "compatible" is a check across sections, not a section of its own.
_NOT_SECTIONS = ("compatible",)


def check_sections(cfg, sections: Sequence[str]) -> None:
  """Runs the registered check of each named section of `cfg`; raises ConfigError (a missing
  section is one too). The checks import their packages (JAX among them) but run nothing."""
  import importlib  # pylint: disable=g-import-not-at-top

  for name in sections:
    if name not in SECTION_CHECKS:
      raise KeyError(f"no check is registered for config section {name!r}")
    if name not in _NOT_SECTIONS and name not in cfg:
      raise ConfigError(name, None, "a config section (configs/paper.py defines every section)")
    module, function, takes = SECTION_CHECKS[name]
    check = getattr(importlib.import_module(module), function)
    check(cfg if takes == "whole" else cfg[name])
