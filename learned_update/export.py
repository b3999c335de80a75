"""θ-only exports (for evaluation), and the releases in checkpoints/ found by name.

An export is a directory holding
  theta.npz      θ's leaves, keyed by their pytree path;
  config.json    the full config θ was trained with;
  summary.json   optional training summary (updates, hours, final meta-loss, ...).
Files are written atomically (temporary file, then rename; JSON strict). Reading is strict
too: a truncated or corrupt theta.npz (read with allow_pickle=False), a config.json or
summary.json that is not a JSON object, or a θ whose leaves do not match the config's
rule raises ExportError naming the file, what is wrong and what was expected, never a
bare zipfile / JSON error.
"""

from __future__ import annotations

import json
import pathlib
import zipfile
import zlib

import jax
import ml_collections
import numpy as np

from meta_unsup_rules.learned_update import releases, rule
from meta_unsup_rules.util import files, run_record, trees


class ExportError(Exception):
  """A θ export that is missing, unreadable or does not match its config."""


def flatten_tree(tree) -> dict[str, np.ndarray]:
  """θ's leaves keyed by jax keystr, the naming of theta.npz (util/trees.py)."""
  return trees.flatten(tree, "keystr", ExportError)


def unflatten_like(template, flat: dict[str, np.ndarray], what: str = "θ"):
  """Rebuilds `template`'s structure from `flat`, checking names and shapes (ExportError)."""
  return trees.unflatten(template, flat, what, "keystr", ExportError, expected_by="the config")


def write_config(path, cfg) -> None:
  """config.json: the config plus the run record (commit, versions, command), which readers drop."""
  files.atomic_write_json(path, run_record.with_record(json.loads(cfg.to_json_best_effort())))


def save_theta(directory, theta, cfg, summary: dict | None = None) -> pathlib.Path:
  directory = pathlib.Path(directory)
  files.atomic_save_npz(directory / "theta.npz", flatten_tree(theta))
  write_config(directory / "config.json", cfg)
  if summary is not None:
    files.atomic_write_json(directory / "summary.json", run_record.with_record(summary))
  return directory


def config_from_json(text: str) -> ml_collections.ConfigDict:
  obj = json.loads(text)
  if not isinstance(obj, dict):
    raise ValueError(f"expected a JSON object, got a {type(obj).__name__}")
  return ml_collections.ConfigDict(_tuples(run_record.without_record(obj)))


_EXPECTED = "expected the file scripts.meta_train or learned_update.export.save_theta writes"


def _read_json_object(path, what: str) -> dict:
  try:
    obj = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
  except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
    raise ExportError(
      f"cannot read {path}: {type(e).__name__}: {e}; {what} must be a JSON object ({_EXPECTED})"
    ) from e
  if not isinstance(obj, dict):
    raise ExportError(f"{path} holds a JSON {type(obj).__name__}; {what} must be a JSON object ({_EXPECTED})")
  return obj


def load_config_json(path) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(_tuples(run_record.without_record(_read_json_object(path, "a config"))))


def _read_theta_npz(path) -> dict[str, np.ndarray]:
  try:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
      raise ValueError("a single array, not an .npz archive")
    with data:
      return {k: data[k] for k in data.files}
  except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError) as e:
    raise ExportError(
      f"cannot read {path}: {type(e).__name__}: {e}; expected an .npz archive of "
      f"θ's leaves keyed by pytree path, complete and without pickled objects "
      f"({_EXPECTED}; a truncated or partial copy reads like this)"
    ) from e


def _tuples(obj):
  """JSON turns tuples into lists; configs use tuples for sequences."""
  if isinstance(obj, dict):
    return {k: _tuples(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return tuple(_tuples(v) for v in obj)
  return obj


def load_theta(directory):
  """Returns (theta, config, summary or None) from an export directory or a release name."""
  directory = releases.export_dir(directory)
  for name in ("theta.npz", "config.json"):
    if not (directory / name).is_file():
      raise ExportError(
        f"{directory / name} not found: a θ export holds theta.npz and config.json "
        "(written by scripts.meta_train or learned_update.export.save_theta)"
      )
  cfg = load_config_json(directory / "config.json")
  try:
    template = jax.eval_shape(lambda: rule.init_theta(jax.random.PRNGKey(0), cfg.rule))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise ExportError(
      f"{directory / 'config.json'} does not describe a rule this code builds "
      f"({type(e).__name__}: {e}); {_EXPECTED}"
    ) from e
  flat = _read_theta_npz(directory / "theta.npz")
  theta = unflatten_like(template, flat, what=f"θ in {directory / 'theta.npz'}")
  summary_path = directory / "summary.json"
  summary = _read_json_object(summary_path, "a summary") if summary_path.is_file() else None
  return jax.tree_util.tree_map(np.asarray, theta), cfg, summary
