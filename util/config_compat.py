"""Config fields added after runs were stored, and the value that reproduces the code before them.

configs/paper.py holds every field's value for a new run. A config stored by an older run (its
`config.json`, a checkpoint's config, a θ export's) lacks the fields added since; reading such a
field gives the value listed here, which is what that code did, so an old θ evaluates and an old
run resumes with its own behaviour. `read(section_cfg, "section.field")` is how code reads an
added field, and `fill_absent(config_dict)` completes a stored config when it is loaded.
"""

from __future__ import annotations

from typing import Any

# "section.field" -> the value that reproduces what the code did before the field existed.
LEGACY_VALUES: dict[str, Any] = {
  "learner.lr_boundaries_unit": "fraction",  # boundaries were fractions of learner.num_updates
  "learner.mixing_lr_multiplier": 1.0,  # one Adam rate for every leaf of θ
  "learner.branch_from": "",  # runs started from init_theta or an export, never from a run
  "learner.branch_update": -1,
  "meta_objective.target_centring": "joint",  # labels and augmentation centred and scaled together
  "meta_objective.augmentation_weight": 1.0,
  "meta_objective.targets": "labels_and_augmentation",
  "task.disjoint_batches": False,  # below 2 x samples_per_class labelled examples a and b were independent
  "rule.implementation": "reference",
  "rule.terms": (  # every ΔW term of the released family (learned_update/rule.py WEIGHT_TERMS)
    "0_order",
    "1_order",
    "decorr_x",
    "hebb",
    "large_decay",
    "lin_lower_symm",
    "lin_upper_psd",
    "lin_upper_symm",
    "rbf",
    "sqr_lower_symm",
    "sqr_upper_symm",
    "w_base",
  ),
  "rule.feedback": "separate",  # the top-down signal went down through V
  "rule.unit_mixing": True,  # unit-axis convolutions and sin/cos unit IDs in the h network
  "rule.top_delta": "learned",  # the learned top-down signal
  "rule.hebb_term": "released",
  "rule.step_mode": "released",
  "unroll.estimator": "tbptt",
  "learner.checkpoint_worker_tasks": True,
  "task.validation_holdout": False,
  "task.validation_holdout_sources": ("imagenet", "alphabet"),
  "validation.mode": "inline",  # validation ran in the trainer's process
  "validation.evaluator_cpus": "",
  "workers.tasks_per_call": 1,  # one task per worker call
  "workers.gpus_per_worker": 0,
}


def legacy(path: str) -> Any:
  """The legacy value of an added field ("section.field"); KeyError names an unknown one."""
  try:
    return LEGACY_VALUES[path]
  except KeyError:
    raise KeyError(f"{path} is not an added config field (util/config_compat.py lists them)") from None


def read(section_cfg, path: str) -> Any:
  """`section_cfg[field]` for `path` = "section.field", or its legacy value when the stored
  section predates the field."""
  field = path.split(".", 1)[1]
  value = section_cfg.get(field, None) if hasattr(section_cfg, "get") else getattr(section_cfg, field, None)
  return legacy(path) if value is None else value


def fill_absent(config: dict) -> list[str]:
  """Adds every added field that a stored config (a plain dict of sections) lacks, with its legacy
  value; returns the paths it added. Sections the config does not have stay absent."""
  added = []
  for path, value in LEGACY_VALUES.items():
    section, field = path.split(".", 1)
    if isinstance(config.get(section), dict) and field not in config[section]:
      config[section][field] = value
      added.append(path)
  return added
