"""Calls of one pure JAX function, one per seed, run as one vmapped computation.

Why: the seeds of an evaluation each run the same small computation (same function, same
shapes, other data). Run one after another they leave most of the machine idle between
small kernels; stacked along a new leading axis and run under one `jax.vmap` they are a
single compiled computation with S-times larger kernels.

`Call(fn, args)` is what a per-seed method would run, `fn(*args)`; `run_all(calls)` returns
the same outputs (to float rounding: XLA may order a batched reduction differently) for
all of them at once. An argument that holds the same data in every call (the same object,
or NumPy views of the same memory: θ of an export, the shared test set) is passed once
(`in_axes=None`) rather than stacked. Calls that cannot be stacked (different functions,
tree structures, shapes or dtypes) run one by one, so a caller never has to check.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Call:
  """`fn(*args)`: `fn` pure and jittable, the same object for every call meant to be batched."""

  fn: Callable
  args: tuple

  def run(self):
    return self.fn(*self.args)


def _same_leaf(a, b) -> bool:
  if a is b:
    return True
  if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
    ia, ib = a.__array_interface__, b.__array_interface__
    return (
      a.dtype == b.dtype
      and ia["shape"] == ib["shape"]
      and ia["strides"] == ib["strides"]
      and (ia["data"][0] == ib["data"][0])
    )
  return False


def _same_data(values: Sequence) -> bool:
  """Whether every value holds the very same data (not merely equal values: nothing is compared)."""
  first = values[0]
  if all(v is first for v in values):
    return True
  leaves0, tree0 = jax.tree_util.tree_flatten(first)
  for v in values[1:]:
    leaves, tree = jax.tree_util.tree_flatten(v)
    if tree != tree0 or not all(_same_leaf(a, b) for a, b in zip(leaves, leaves0)):
      return False
  return True


def _signature(value):
  leaves, tree = jax.tree_util.tree_flatten(value)
  return tree, tuple((np.shape(x), x.dtype if hasattr(x, "dtype") else np.result_type(x)) for x in leaves)


def _stack(values: Sequence):
  def stack(*xs):
    if all(isinstance(x, np.ndarray) for x in xs):
      return np.stack(xs)
    return jnp.stack([jnp.asarray(x) for x in xs])

  return jax.tree_util.tree_map(stack, *values)


@functools.lru_cache(maxsize=None)
def _vmapped(fn: Callable, in_axes: tuple) -> Callable:
  # One jitted wrapper per (function, axes): a new wrapper per call would recompile every time.
  return jax.jit(jax.vmap(fn, in_axes=in_axes))


def stackable(calls: Sequence[Call]) -> bool:
  """Whether `calls` can run as one vmapped computation (same fn; per argument, one signature)."""
  if len(calls) < 2 or any(c.fn is not calls[0].fn or len(c.args) != len(calls[0].args) for c in calls):
    return False
  for i in range(len(calls[0].args)):
    values = [c.args[i] for c in calls]
    if not _same_data(values) and len({_signature(v) for v in values}) > 1:
      return False
  return True


def run_all(calls: Sequence[Call]) -> list[Any]:
  """[c.run() for c in calls], as one vmapped computation when `stackable(calls)`.

  Batched outputs come back as NumPy arrays (one host copy, then a view per call).
  """
  calls = list(calls)
  if not stackable(calls):
    return [c.run() for c in calls]
  in_axes, args = [], []
  for i in range(len(calls[0].args)):
    values = [c.args[i] for c in calls]
    shared = _same_data(values)
    in_axes.append(None if shared else 0)
    args.append(values[0] if shared else _stack(values))
  out = jax.device_get(_vmapped(calls[0].fn, tuple(in_axes))(*args))
  return [jax.tree_util.tree_map(lambda a, i=i: a[i], out) for i in range(len(calls))]
