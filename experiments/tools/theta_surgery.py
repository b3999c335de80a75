"""Study helpers that edit θ: splice groups of leaves between two θs, hand-set the ΔW mixing.

Used by experiments.tools.splice_theta and hand_rule_theta (and their tests); not part of the
installed package: nothing in meta-training or evaluation edits θ by hand.
"""

from __future__ import annotations

import jax
import numpy as np

from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.learned_update.export import ExportError
from meta_unsup_rules.util import trees


def theta_group_paths(theta) -> list[str]:
  """Every θ leaf as a slash path ("forward/merge/w"): the names `splice_theta` groups match."""
  return [trees.path_name(p, "slash") for p, _ in jax.tree_util.tree_leaves_with_path(theta)]


def splice_theta(base, donor, groups) -> tuple[dict, list[str]]:
  """`base` with the leaves under each slash-path prefix in `groups` taken from `donor`.

  A diagnostic: which part of θ carries a change between two θ of one run. Returns the
  spliced θ and the slash paths of the leaves taken from `donor`.
  """
  names = theta_group_paths(base)
  shapes = [np.shape(l) for l in jax.tree_util.tree_leaves(base)]
  if theta_group_paths(donor) != names or [np.shape(l) for l in jax.tree_util.tree_leaves(donor)] != shapes:
    raise ExportError("the two θ have different architectures: splice θ of one rule config")

  def under(name, group):
    return name == group or name.startswith(group.rstrip("/") + "/")

  for group in groups:
    if not any(under(n, group) for n in names):
      tops = sorted({n.split("/")[0] for n in names})
      raise ExportError(
        f"no θ leaf under {group!r}: groups are slash paths below one of {tops} (e.g. 'forward/merge')"
      )
  taken = [n for n in names if any(under(n, g) for g in groups)]
  from_donor = set(taken)
  leaves = [
    np.asarray(d if name in from_donor else b)
    for name, b, d in zip(names, jax.tree_util.tree_leaves(base), jax.tree_util.tree_leaves(donor))
  ]
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(base), leaves), taken


def with_hand_mixing(theta, weights: dict[str, float]) -> dict:
  """θ whose ΔW merge mixes only the named terms: `weights` (term → weight), every other
  mixing weight and the merge bias zero, in every merge of θ (forward, and backward if any).

  The fixed terms ("hebb", "decorr_x", "w_base", "large_decay") need no learned readout, so
  e.g. {"hebb": 1} is a hand-designed Hebbian rule inside the released architecture: a start
  for meta-training near a known rule, and a yardstick for what meta-training added.
  """
  unknown = sorted(set(weights) - set(rule.WEIGHT_TERMS))
  if unknown:
    raise ExportError(f"unknown ΔW terms {unknown}: the terms are {list(rule.WEIGHT_TERMS)}")
  w = np.zeros(len(rule.WEIGHT_TERMS), np.float32)
  for name, value in weights.items():
    w[rule.WEIGHT_TERMS.index(name)] = value
  out = jax.tree_util.tree_map(np.asarray, theta)
  out = dict(out)
  for name in ("forward", "backward"):
    if name in out:
      out[name] = dict(out[name], merge={"w": w.copy(), "b": np.zeros((), np.float32)})
  return out
