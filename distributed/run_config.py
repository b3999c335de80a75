"""What a resumed run may change: run-control fields only; any other difference is refused.

A run's settings are the config its checkpoint stored. On resume the config given on the command
line is compared with it field by field:

* run-control fields (`RUN_CONTROL`: how long, how often to checkpoint / snapshot / validate, where
  and on how many workers it runs, where the data are) may differ: the run takes the given value,
  and the change goes into its history with the update at which it was made;
* a field the stored config lacks (added to the code after the run started, util/config_compat.py)
  keeps the value that reproduces what the run did; given explicitly (`--config.x=...`) with
  another value it is drift;
* any other difference is drift: `ConfigDrift` lists each field (stored → given) and nothing is
  written. A new run from another run's state (`learner.branch_from`) is not a resume.

`resolve` returns the config the resumed run uses (the stored settings with the given run-control
values) and the changes.
"""

from __future__ import annotations

import json

import ml_collections

from meta_unsup_rules.util import config_compat

# Fields a resumed run may change: how long it runs, how often it writes, where it finds things.
RUN_CONTROL = (
  "learner.num_updates",
  "learner.checkpoint_every",
  "learner.keep_checkpoints",
  "learner.snapshot_every",
  "validation.every",
  "validation.mode",
  "validation.evaluator_cpus",
  # Where and on how many workers it runs (a cluster's size changes between sessions; a changed
  # in-process worker count is also logged by the pool, distributed/inprocess_pool.py).
  "workers.num_workers",
  "workers.mode",
  "workers.ray_address",
  "workers.cpus_per_worker",
  "workers.gpus_per_worker",
  "workers.jax_platforms",
  "workers.result_timeout_sec",
  "workers.max_consecutive_errors",
  "data_dir",
)


class ConfigDrift(ValueError):
  """A resumed run was given settings that differ from the ones it ran with."""


def _flat(tree, prefix="") -> dict:
  out = {}
  for key, value in tree.items():
    path = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(_flat(value, path + "."))
    else:
      out[path] = value
  return out


def _plain(value):
  """JSON form, so that a tuple and the list a stored config holds compare equal."""
  return json.loads(json.dumps(value))


def _set(cfg: ml_collections.ConfigDict, path: str, value) -> None:
  *sections, field = path.split(".")
  node = cfg
  for s in sections:
    node = node[s]
  with node.ignore_type():
    node[field] = tuple(value) if isinstance(value, list) else value


def resolve(stored_json: str, given: ml_collections.ConfigDict, explicit=(), update: int = 0):
  """(the config a resumed run uses, [{"update", "field", "from", "to"}] for run-control changes).

  `stored_json`: the checkpoint's config; `explicit`: the field paths given on the command line.
  Raises ConfigDrift listing every other difference."""
  stored = _flat(json.loads(stored_json))
  given_flat = _flat(json.loads(given.to_json_best_effort()))
  explicit = set(explicit)
  effective = ml_collections.ConfigDict(given.to_dict())
  drift, changes = [], []
  for path, value in sorted(given_flat.items()):
    section = path.split(".", 1)[0]
    if path in RUN_CONTROL:
      if path in stored and _plain(stored[path]) != _plain(value):
        changes.append({"update": int(update), "field": path, "from": stored[path], "to": _plain(value)})
      continue
    if path not in stored:
      if path not in config_compat.LEGACY_VALUES or section not in json.loads(stored_json):
        continue  # a field this check cannot place: the given value stands
      legacy = _plain(config_compat.legacy(path))
      if _plain(value) != legacy and path in explicit:
        drift.append(f"{path}: absent from the stored config, so {legacy!r} → given {_plain(value)!r}")
      _set(effective, path, legacy)
      continue
    if _plain(stored[path]) != _plain(value):
      drift.append(f"{path}: {stored[path]!r} → {_plain(value)!r}")
  if drift:
    raise ConfigDrift(
      "the run in this workdir was made with other settings than the ones given (stored → given): "
      + "; ".join(drift)
      + ". A resumed run keeps its settings; only run-control fields may change ("
      + ", ".join(RUN_CONTROL)
      + "). Resume with the stored values (the workdir's config.json), or start a new run "
      "(another --workdir; --config.learner.branch_from=WORKDIR starts from this run's state)"
    )
  return effective, changes
