"""Atomic, resumable checkpoints in a workdir: `checkpoint_<step>.npz`, the last N valid kept.

A checkpoint holds θ, the optimiser state, the update step, the learner's counters, the
RNG/worker state needed to resume exactly (in-process mode), the config (JSON) and θ's
signature (leaf paths and shapes). A workdir whose checkpoint has another θ architecture
is refused, never overwritten.

Format (no pickled objects, so a checkpoint survives a refactor and loading one someone
else wrote executes no code): a NumPy `.npz` archive read with `allow_pickle=False`.
Every array sits under its slash path (`learner/theta/compute_h/bn_in/offset`,
`pool/workers/0/task/permutation`, ...); the member `meta.json` (UTF-8 bytes as uint8)
holds strict JSON: the format name and version and the payload with each array replaced
by `{"__array__": "<member name>"}` — step, counters, config JSON, θ signature, elapsed
time, NumPy bit-generator states (dicts of ints), worker scalars and task descriptions.
Structures (θ's pytree, optax's state tuples, base-model states, tasks) are rebuilt from
code by their owners (`unflatten` against a template from the current code), never
from the file, and a leaf name or shape that differs is an error naming it.

A newest checkpoint that cannot be read (truncated, corrupt) is reported with a warning
naming it and the newest readable one is used instead; the bad file is kept for
inspection (moved aside to `<name>.corrupt` only if a new checkpoint of the same step
is about to replace it), and pruning counts only readable checkpoints, so it never
deletes the last valid one. Old pickle checkpoints (`checkpoint_<step>.pkl`) are no longer
read: a workdir holding only those is refused, naming the commit whose converter turns them
into this format (CONVERTER_COMMIT).
"""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import re
import zipfile
import zlib
from typing import Any, Mapping

import jax
import numpy as np

from meta_unsup_rules.util import files, trees

FORMAT = "meta_unsup.checkpoint"
VERSION = 1
META_KEY = "meta.json"
_ARRAY = "__array__"
_NAME = re.compile(r"^checkpoint_(\d{8})\.npz$")
LEGACY_NAME = re.compile(r"^checkpoint_(\d{8})\.pkl$")  # before format version 1 (pickles)
# The last version of the pickle converter (scripts/convert_checkpoints.py, distributed/legacy_checkpoint.py).
CONVERTER_COMMIT = "35df991"
_log = logging.getLogger(__name__)


class CheckpointError(Exception):
  """A checkpoint that cannot be used with this run (corrupt, or another θ architecture)."""


def checkpoint_name(step: int) -> str:
  return f"checkpoint_{int(step):08d}.npz"


def theta_signature(theta) -> list[tuple[str, tuple[int, ...]]]:
  return [
    (jax.tree_util.keystr(p), tuple(np.shape(l))) for p, l in jax.tree_util.tree_leaves_with_path(theta)
  ]


def _signature_tuples(signature) -> list[tuple[str, tuple[int, ...]]] | None:
  """A signature read back from JSON (lists) in the form `theta_signature` returns."""
  if signature is None:
    return None
  return [(str(name), tuple(int(d) for d in shape)) for name, shape in signature]


# ------------------------------------------------------------------ pytree leaves by path


def flatten(tree) -> dict[str, np.ndarray]:
  """A pytree's leaves as NumPy arrays keyed by slash path ("1/mu/compute_h/bn_in/offset")."""
  return trees.flatten(tree, "slash", CheckpointError)


def unflatten(template, flat: Mapping[str, Any], what: str):
  """`template`'s structure (built by the current code) filled with the leaves of `flat`
  (util/trees.py: names and shapes must match exactly, else CheckpointError naming the differences)."""
  return trees.unflatten(template, flat, what, "slash", CheckpointError)


# ------------------------------------------------------------------------ file format


def _split(obj, prefix: str, arrays: dict) -> Any:
  """JSON-able copy of `obj` with each array moved into `arrays` under its slash path."""
  if isinstance(obj, Mapping):
    if _ARRAY in obj:
      raise CheckpointError(f"checkpoint field {prefix or '/'} uses the reserved key {_ARRAY!r}")
    out = {}
    for k, v in obj.items():
      if not isinstance(k, str):
        raise CheckpointError(f"checkpoint field {prefix or '/'} has a non-string key {k!r}")
      out[k] = _split(v, f"{prefix}/{k}" if prefix else k, arrays)
    return out
  if isinstance(obj, (list, tuple)):
    return [_split(v, f"{prefix}/{i}" if prefix else str(i), arrays) for i, v in enumerate(obj)]
  if isinstance(obj, (np.ndarray, jax.Array)):
    value = np.asarray(obj)
    if value.dtype.hasobject:
      raise CheckpointError(f"checkpoint field {prefix} is an object array (would need pickle)")
    if prefix in arrays or prefix == META_KEY:
      raise CheckpointError(f"two checkpoint arrays share the path {prefix!r}")
    arrays[prefix] = value
    return {_ARRAY: prefix}
  if isinstance(obj, np.generic):
    return obj.item()
  if obj is None or isinstance(obj, (bool, int, float, str)):
    return obj
  raise CheckpointError(
    f"checkpoint field {prefix} holds a {type(obj).__name__}: only dicts, "
    "lists, numbers, strings and arrays are stored (no pickled objects)"
  )


def _join(obj, arrays: Mapping[str, np.ndarray]) -> Any:
  if isinstance(obj, dict):
    if set(obj) == {_ARRAY}:
      return arrays[obj[_ARRAY]]
    return {k: _join(v, arrays) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_join(v, arrays) for v in obj]
  return obj


def encode(payload: Mapping) -> bytes:
  """The `.npz` bytes of a payload of dicts, lists, JSON scalars and arrays."""
  arrays: dict[str, np.ndarray] = {}
  tree = _split(payload, "", arrays)
  meta = files.dumps({"format": FORMAT, "version": VERSION, "payload": tree})
  arrays[META_KEY] = np.frombuffer(meta.encode("utf-8"), np.uint8)
  buf = io.BytesIO()
  np.savez_compressed(buf, **arrays)  # ~15% smaller: the per-member headers compress
  return buf.getvalue()


def _reject_constant(name):
  raise ValueError(f"{name} is not strict JSON")


def decode(data: bytes, where: str = "checkpoint") -> dict:
  """Inverse of `encode`; any unreadable or inconsistent content raises CheckpointError."""
  try:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
      if META_KEY not in z.files:
        raise CheckpointError(f"{where} has no {META_KEY} member: not a checkpoint of this project")
      meta = json.loads(bytes(z[META_KEY]).decode("utf-8"), parse_constant=_reject_constant)
      if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: {META_KEY} does not describe a {FORMAT} file")
      if meta.get("version") != VERSION:
        raise CheckpointError(
          f"{where} has format version {meta.get('version')}, this code reads version {VERSION}"
        )
      arrays = {k: z[k] for k in z.files if k != META_KEY}
    payload = _join(meta["payload"], arrays)
  except CheckpointError:
    raise
  except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError, TypeError) as e:
    raise CheckpointError(
      f"cannot read {where}: {type(e).__name__}: {e} "
      "(truncated or corrupt; expected a .npz written by this project)"
    ) from e
  if not isinstance(payload, dict) or "step" not in payload:
    raise CheckpointError(f"{where}: the payload has no step")
  return payload


# ------------------------------------------------------------------------- workdir


def list_checkpoints(workdir) -> list[pathlib.Path]:
  """Every `checkpoint_<step>.npz` in `workdir`, oldest first (readable or not)."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    return []
  return sorted(
    (p for p in workdir.iterdir() if _NAME.match(p.name)), key=lambda p: int(_NAME.match(p.name).group(1))
  )


def load_path(path) -> dict:
  path = pathlib.Path(path)
  try:
    data = path.read_bytes()
  except OSError as e:
    raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
  return decode(data, where=str(path))


def is_readable(path) -> bool:
  try:
    load_path(path)
  except CheckpointError:
    return False
  return True


def save(workdir, payload: Mapping, keep: int) -> pathlib.Path:
  """Writes the payload atomically, then prunes readable checkpoints beyond the newest `keep`.

  Unreadable checkpoints are never deleted and never counted (see the module docstring).
  """
  path = pathlib.Path(workdir) / checkpoint_name(payload["step"])
  data = encode(payload)
  if path.exists() and not is_readable(path):
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    _log.warning(
      "unreadable checkpoint %s moved aside to %s (a new checkpoint of its step replaces it)", path, aside
    )
  files.atomic_write_bytes(path, data)
  kept = 0
  for old in reversed(list_checkpoints(workdir)):
    if old != path and not is_readable(old):
      continue  # kept for inspection, not a valid checkpoint
    kept += 1
    if kept > max(int(keep), 1):
      old.unlink(missing_ok=True)
  return path


def load_latest(workdir, expected_signature=None) -> dict | None:
  """The newest readable checkpoint's payload, or None when there is none at all.

  An unreadable newer one is skipped with a warning naming it (and kept); when every
  checkpoint is unreadable, CheckpointError (starting afresh would hide the damage).
  Refuses a θ of another architecture. The payload gets "path" (the file used).
  """
  paths = list_checkpoints(workdir)
  if not paths:
    legacy = sorted(
      p.name for p in pathlib.Path(workdir).glob("checkpoint_*.pkl") if LEGACY_NAME.match(p.name)
    )
    if legacy:  # starting afresh beside them would silently discard a run
      raise CheckpointError(
        f"{workdir} holds old pickle checkpoints ({', '.join(legacy[-3:])}) and none in the "
        f"current format: pickle checkpoints are no longer supported. Convert them with the "
        f"converter of commit {CONVERTER_COMMIT} (its last version): in a checkout of that "
        f"commit, `python -m scripts.convert_checkpoints --workdir={workdir}`"
      )
    return None
  errors = []
  for path in reversed(paths):
    try:
      payload = load_path(path)
    except CheckpointError as e:
      errors.append(str(e))
      _log.warning("skipping unreadable checkpoint %s (kept for inspection): %s", path, e)
      continue
    break
  else:
    raise CheckpointError(
      f"no readable checkpoint in {workdir}: {'; '.join(errors)}. Move the files aside to start afresh."
    )
  ours = _signature_tuples(expected_signature)
  theirs = _signature_tuples(payload.get("theta_signature"))
  if ours is not None and theirs != ours:
    theirs_d, ours_d = dict(theirs or []), dict(ours)
    diff = sorted(k for k in set(theirs_d) | set(ours_d) if theirs_d.get(k) != ours_d.get(k))
    raise CheckpointError(
      f"{path} holds a θ of another architecture (first differences: {diff[:3]}); "
      "use a new --workdir or the config that wrote it. Nothing was overwritten."
    )
  payload["path"] = str(path)
  return payload


def load_step(workdir, step: int, expected_signature=None) -> dict:
  """The payload of `workdir`'s checkpoint of update `step` (-1: its newest readable one), with
  "path"; CheckpointError names the updates it does have, or a θ of another architecture."""
  if int(step) < 0:
    payload = load_latest(workdir, expected_signature)
    if payload is None:
      raise CheckpointError(f"{workdir} holds no checkpoint (expected files named checkpoint_########.npz)")
    return payload
  path = pathlib.Path(workdir) / checkpoint_name(step)
  if path not in list_checkpoints(workdir):
    have = [int(_NAME.match(p.name).group(1)) for p in list_checkpoints(workdir)]
    raise CheckpointError(
      f"{workdir} has no checkpoint of update {int(step)} (it has updates {have or 'none'})"
    )
  payload = {**load_path(path), "path": str(path)}
  ours = _signature_tuples(expected_signature)
  if ours is not None and _signature_tuples(payload.get("theta_signature")) != ours:
    raise CheckpointError(f"{path} holds a θ of another architecture than this run's rule section")
  return payload


def theta_from_payload(payload: Mapping):
  """θ of a loaded checkpoint as the pytree its own config's rule builds (for exports)."""
  from meta_unsup_rules.learned_update import export, rule  # pylint: disable=g-import-not-at-top

  cfg = export.config_from_json(payload["config_json"])
  template = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), cfg.rule))
  where = payload.get("path", "checkpoint")
  return unflatten(template, payload["learner"]["theta"], what=f"θ of {where}"), cfg
