"""Pytrees of arrays on the host: finiteness and norms (NumPy float64), and leaves stored by name.

`flatten` / `unflatten` are the one way the project stores a pytree in a file (checkpoints and θ
exports): leaves keyed by their path, rebuilt against a template built by the current code, so a
file of another code version fails with a message naming the differences rather than loading a
wrong structure. Two path spellings exist because files of both are in use: "slash"
("1/mu/compute_h/bn_in/offset", checkpoints) and "keystr" ("[1]['mu']...", θ exports).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np


def all_finite(tree) -> bool:
  return all(bool(np.all(np.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


def global_norm(tree) -> float:
  return float(
    np.sqrt(
      sum(float(np.sum(np.square(np.asarray(leaf, np.float64)))) for leaf in jax.tree_util.tree_leaves(tree))
    )
  )


def _key_name(key) -> str:
  for attr in ("key", "idx", "name"):  # DictKey, SequenceKey, GetAttrKey (namedtuples)
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def path_name(path, naming: str = "slash") -> str:
  """A leaf's path as a file key: "slash" joins the keys with "/", "keystr" is jax's keystr."""
  if naming == "slash":
    return "/".join(_key_name(k) for k in path)
  if naming == "keystr":
    return jax.tree_util.keystr(path)
  raise ValueError(f"naming={naming!r}: expected 'slash' or 'keystr'")


def flatten(tree, naming: str = "slash", error: type[Exception] = ValueError) -> dict[str, np.ndarray]:
  """A pytree's leaves as NumPy arrays keyed by path (`path_name`)."""
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    name = path_name(path, naming)
    if name in flat:
      raise error(f"two leaves share the path {name!r}: cannot store them by name")
    flat[name] = np.asarray(leaf)
  return flat


def unflatten(
  template,
  flat: Mapping[str, Any],
  what: str,
  naming: str = "slash",
  error: type[Exception] = ValueError,
  expected_by: str = "this code",
):
  """`template`'s structure filled with the leaves of `flat`; names and shapes must match exactly.

  The error (of class `error`) names `what`, the first missing and unexpected names, or the first
  leaf whose shape differs from what `expected_by` expects."""
  if not isinstance(flat, Mapping):
    raise error(f"{what}: expected leaves keyed by path, got {type(flat).__name__}")
  pairs = jax.tree_util.tree_leaves_with_path(template)
  names = [path_name(p, naming) for p, _ in pairs]
  missing = [n for n in names if n not in flat]
  extra = sorted(set(flat) - set(names))
  if missing or extra:
    raise error(
      f"{what} does not match the structure {expected_by} expects: missing {missing[:5]}"
      f"{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
    )
  leaves = []
  for name, (_, leaf) in zip(names, pairs):
    value = np.asarray(flat[name])
    if value.shape != tuple(np.shape(leaf)):
      raise error(
        f"{what} leaf {name!r} has shape {value.shape}, {expected_by} expects {tuple(np.shape(leaf))}"
      )
    leaves.append(value)
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
