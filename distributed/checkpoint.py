"""Atomic, resumable checkpoints in a workdir: `checkpoint_<step>.pkl`, the last N kept.

A checkpoint holds θ, the optimiser state, the update step, the learner's counters,
the RNG/worker state needed to resume exactly (in-process mode), the config (JSON)
and θ's signature (leaf paths and shapes). A workdir whose checkpoint has another θ
architecture is refused, never overwritten.
"""
from __future__ import annotations

import pathlib
import pickle
import re

import jax
import numpy as np

from learned_update import export

_NAME = re.compile(r"^checkpoint_(\d{8})\.pkl$")


class CheckpointError(Exception):
  """A checkpoint that cannot be used with this run (corrupt, or another θ architecture)."""


def theta_signature(theta) -> list[tuple[str, tuple[int, ...]]]:
  return [(jax.tree_util.keystr(p), tuple(np.shape(l)))
          for p, l in jax.tree_util.tree_leaves_with_path(theta)]


def list_checkpoints(workdir) -> list[pathlib.Path]:
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    return []
  return sorted((p for p in workdir.iterdir() if _NAME.match(p.name)),
                key=lambda p: int(_NAME.match(p.name).group(1)))


def save(workdir, payload: dict, keep: int) -> pathlib.Path:
  path = pathlib.Path(workdir) / f"checkpoint_{int(payload['step']):08d}.pkl"
  export.atomic_write_bytes(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
  for old in list_checkpoints(workdir)[:-keep]:
    old.unlink(missing_ok=True)
  return path


def load_path(path) -> dict:
  try:
    return pickle.loads(pathlib.Path(path).read_bytes())
  except Exception as e:  # a truncated or foreign file: say which one
    raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e


def load_latest(workdir, expected_signature=None) -> dict | None:
  """The newest checkpoint's payload, or None; refuses another θ architecture."""
  paths = list_checkpoints(workdir)
  if not paths:
    return None
  path = paths[-1]
  payload = load_path(path)
  if expected_signature is not None and payload.get("theta_signature") != expected_signature:
    theirs = dict(payload.get("theta_signature") or [])
    ours = dict(expected_signature)
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    raise CheckpointError(
        f"{path} holds a θ of another architecture (first differences: {diff[:3]}); "
        "use a new --workdir or the config that wrote it. Nothing was overwritten.")
  payload["path"] = str(path)
  return payload
