"""Converts old pickle checkpoints (`checkpoint_<step>.pkl`) to the current `.npz` format.

WARNING: reading a `.pkl` checkpoint unpickles it, and unpickling can execute code. The
unpickler below only resolves the few globals our old checkpoints used (NumPy array
reconstruction, optax's state namedtuples, and `tasks.meta_train._rebuild_task`, mapped
to a local function that returns the task's description instead of building a task),
which narrows but does not remove the risk. Use it only on this project's own old
checkpoints, never on files from elsewhere. It is the only place in the project that
reads pickles; everything else reads `.npz` with `allow_pickle=False`.

  python -m scripts.convert_checkpoints --workdir=checkpoints/local_run

Each `.pkl` is converted beside itself, the result is re-read and checked (θ rebuilt
from its config, leaf by leaf equal to the pickle's), and only then the `.pkl` is removed.
"""

from __future__ import annotations

import io
import pathlib
import pickle
from typing import Any

import jax
import numpy as np

from distributed import checkpoint
from util import files

# (module, name) pairs an old checkpoint may name, NumPy's across its 1.x/2.x module moves.
_NUMPY_GLOBALS = {
  ("numpy", "ndarray"),
  ("numpy", "dtype"),
  ("numpy.core.multiarray", "_reconstruct"),
  ("numpy._core.multiarray", "_reconstruct"),
  ("numpy.core.multiarray", "scalar"),
  ("numpy._core.multiarray", "scalar"),
  ("numpy.core.numeric", "_frombuffer"),
  ("numpy._core.numeric", "_frombuffer"),
}


def _task_description(fields: dict, spec) -> dict:
  """Stands in for the old `tasks.meta_train._rebuild_task`: the description, no images."""
  del spec  # the source is re-loaded from the run's config on resume
  return dict(fields)


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only the globals the old checkpoints used; anything else is refused."""

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _NUMPY_GLOBALS:
      return super().find_class(module, name)
    if module.split(".")[0] == "optax" and name.endswith("State"):
      import optax  # pylint: disable=g-import-not-at-top

      cls = getattr(optax, name, None)
      if isinstance(cls, type) and issubclass(cls, tuple):  # optax's state namedtuples
        return cls
    if (module, name) == ("tasks.meta_train", "_rebuild_task"):
      return _task_description
    raise pickle.UnpicklingError(
      f"refusing to load global {module}.{name}: not one an old checkpoint of this project "
      "uses (this converter is only for the project's own checkpoints)"
    )


def read_legacy(path) -> dict:
  """The payload of an old `.pkl` checkpoint (executes pickle: see the module docstring)."""
  data = pathlib.Path(path).read_bytes()
  try:
    return _RestrictedUnpickler(io.BytesIO(data)).load()
  except Exception as e:  # pylint: disable=broad-except  (any unpickling failure: name the file)
    raise checkpoint.CheckpointError(f"cannot read old checkpoint {path}: {type(e).__name__}: {e}") from e


def _worker_state(old: dict) -> dict:
  task = old.get("task")
  if task is not None:
    task = {
      **task,
      "classes": np.asarray(task["classes"]),
      "permutation": np.asarray(task["permutation"]),
      "layer_widths": [int(w) for w in task["layer_widths"]],
    }
  return {
    "rng": old["rng"],
    "task": task,
    "state": None if old.get("state") is None else checkpoint.flatten(old["state"]),
    "steps_done": int(old["steps_done"]),
    "horizon": int(old["horizon"]),
    "tasks_started": int(old["tasks_started"]),
  }


def convert_payload(old: dict) -> dict:
  """An old payload (pytrees, optax namedtuples) as the plain payload the trainer saves now."""
  learner = old["learner"]
  pool = old.get("pool")
  if pool is not None:
    pool = {"workers": [_worker_state(w) for w in pool["workers"]], "next": int(pool["next"])}
  return {
    "step": int(old["step"]),
    "learner": {
      "theta": checkpoint.flatten(learner["theta"]),
      "opt_state": checkpoint.flatten(learner["opt_state"]),
      "step": int(learner["step"]),
      "counters": {k: int(v) for k, v in learner["counters"].items()},
    },
    "pool": pool,
    "theta_signature": [[n, list(s)] for n, s in old["theta_signature"]],
    "config_json": old["config_json"],
    "elapsed_sec": float(old.get("elapsed_sec", 0.0)),
  }


def _same(a, b) -> bool:
  """Equal payloads: same keys, same JSON values, arrays equal in dtype, shape and bits."""
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
  if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
  if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
  return type(a) is type(b) and a == b


def convert_file(path, remove: bool = True) -> dict:
  """Writes `checkpoint_<step>.npz` beside an old `.pkl`, verifies it, removes the `.pkl`.

  Returns {"from", "to", "bytes_before", "bytes_after", "step"}.
  """
  path = pathlib.Path(path)
  old = read_legacy(path)
  new = convert_payload(old)
  out = path.with_name(checkpoint.checkpoint_name(new["step"]))
  if out.exists():
    raise checkpoint.CheckpointError(f"{out} already exists: not overwriting it with {path}")
  files.atomic_write_bytes(out, checkpoint.encode(new))
  try:
    back = checkpoint.load_path(out)
    if not _same(back, new):
      raise checkpoint.CheckpointError(f"{out} does not read back as written")
    theta, _ = checkpoint.theta_from_payload({**back, "path": str(out)})
    old_theta = old["learner"]["theta"]
    if jax.tree_util.tree_structure(theta) != jax.tree_util.tree_structure(old_theta) or not all(
      np.array_equal(a, b)
      for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(old_theta))
    ):
      raise checkpoint.CheckpointError(f"{out}: θ rebuilt from its config differs from {path}'s")
  except BaseException:
    out.unlink(missing_ok=True)
    raise
  result = {
    "from": str(path),
    "to": str(out),
    "step": new["step"],
    "bytes_before": path.stat().st_size,
    "bytes_after": out.stat().st_size,
  }
  if remove:
    path.unlink()
  return result


def convert_workdir(workdir, remove: bool = True) -> list[dict]:
  """Converts every old `checkpoint_<step>.pkl` in `workdir` (oldest first)."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise checkpoint.CheckpointError(f"{workdir} is not a directory")
  paths = sorted(p for p in workdir.iterdir() if checkpoint.LEGACY_NAME.match(p.name))
  return [convert_file(p, remove=remove) for p in paths]
