"""The rule-parts study's conditions, without flags (the tests import them into the suite's one
process, where a tool's flags would clash with another's)."""

from __future__ import annotations

from meta_unsup_rules.learned_update import rule


def conditions(cfg) -> dict[str, dict]:
  """{name: rule fields}: the θ as released, each term left out, each other switch flipped."""
  out = {"as released": {}}
  terms = tuple(cfg.rule.terms)
  for term in rule.WEIGHT_TERMS:
    if term in terms:
      out[f"without {term}"] = {"terms": tuple(t for t in terms if t != term)}
  out["feedback through W"] = {"feedback": "transpose"}
  out["no unit mixing"] = {"unit_mixing": False}
  out["no top-down signal"] = {"top_delta": "zero"}
  return out
