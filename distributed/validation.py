"""Meta-validation during meta-training: θ scored on a validation task, the best one kept.

Every `validation.every` updates (and at the last update, `learner.num_updates`) the
trainer hands the learner's θ to `Validator.run`: the learned method only
(evaluation.runner.run_evaluation) on `validation.task` (`imagenet_val`: Tiny-ImageNet
classes that meta-training leaves out with `task.validation_holdout`; never a test task),
seeds `validation.seed`, `seed + 1`, ... (`validation.seeds` of them, distinct from the
test seeds 0–9), `validation.inner_steps` unlabelled steps, the config's `base_model`, and
every other protocol setting from the `evaluation` section. Its result is the mean
accuracy of `validation.readout` at the last step over the seeds and its standard error.
The running best (highest mean) is what the trainer exports to `<workdir>/best/` and keeps
in its checkpoints (`validation_best`), so it survives a resume.
"""

from __future__ import annotations

import json
import pathlib
import time

import ml_collections

from meta_unsup_rules.distributed import run_files
from meta_unsup_rules.evaluation import features, protocols, runner
from meta_unsup_rules.tasks import eval_tasks
from meta_unsup_rules.util import config_compat

BEST_DIR = run_files.BEST


class Validator:
  """Runs the validation of one config; the task and its config are built on first use."""

  def __init__(self, cfg):
    self.vcfg = cfg.validation
    self.every = int(self.vcfg.every)
    # "inline": the trainer runs `run` itself; "async": it writes a snapshot at each due step and
    # a separate evaluator (distributed/evaluator.py) scores it.
    self.inline = config_compat.read(self.vcfg, "validation.mode") == "inline"
    self._cfg = cfg
    self._task = None

  def due(self, step: int, num_updates: int) -> bool:
    return self.every > 0 and (step % self.every == 0 or step == num_updates)

  def _setup(self):
    if self._task is None:
      v = self.vcfg
      cfg = ml_collections.ConfigDict(self._cfg.to_dict())  # references resolved; a copy
      cfg.evaluation.update(
        dict(
          task=v.task,
          inner_steps=int(v.inner_steps),
          eval_every=int(v.eval_every),
          seeds=int(v.seeds),
          methods=("learned",),
        )
      )
      self._cfg = cfg
      self._task = eval_tasks.make_eval_task(v.task, data_dir=cfg.get("data_dir") or None)
    return self._task, self._cfg

  def run(self, theta, step: int) -> dict:
    """The record fields of one validation: val_accuracy, val_sem, val_step, val_sec."""
    t0 = time.monotonic()
    task, cfg = self._setup()
    v = self.vcfg
    seeds = [int(v.seed) + i for i in range(int(v.seeds))]
    result = runner.run_evaluation(
      runner.EvaluationRun(
        task, cfg, ["learned"], int(v.inner_steps), int(v.eval_every), seeds, lambda seed: theta
      )
    )
    final = result["final"]["learned"][v.readout]
    per_seed = next(
      r["values"]
      for r in result["rows"]
      if r["method"] == "learned" and r["readout"] == v.readout and r["step"] == int(v.inner_steps)
    )
    rank = feature_rank(task, cfg, theta, int(v.inner_steps), seeds[0])
    return {
      "val_accuracy": float(final["mean"]),
      "val_sem": None if final["sem"] is None else float(final["sem"]),
      "val_per_seed": [float(a) for a in per_seed],  # seeds validation.seed, +1, ...: paired comparisons
      "val_effective_rank": rank["effective_rank"],
      "val_top_component": rank["top_component"],
      "val_step": int(step),  # the update whose θ was validated
      "val_sec": time.monotonic() - t0,
    }

  def settings(self) -> dict:
    v = self.vcfg
    return {
      "task": v.task,
      "seeds": [int(v.seed), int(v.seed) + int(v.seeds) - 1],
      "inner_steps": int(v.inner_steps),
      "readout": v.readout,
    }


RANK_EXAMPLES = 1_000  # test examples whose features the effective rank is computed on


def feature_rank(task, cfg, theta, inner_steps: int, seed: int) -> dict:
  """Effective rank (exp of the entropy of the PCA spectrum) of the top-layer features after
  `inner_steps` rule steps on one seed, and the share of the top component: a collapse of the
  features shows here before it shows in accuracy."""
  runners = features.trained_runners(task, cfg, lambda s: theta, inner_steps, seed)
  x_test, _ = task.test_set(RANK_EXAMPLES)
  f = protocols.batched_features(runners["learned"].features, x_test, int(cfg.evaluation.test_chunk))
  spectrum = features.pca_spectrum(f)
  return {"effective_rank": features.effective_rank(spectrum), "top_component": float(spectrum[0])}


def is_better(record: dict, best: dict | None) -> bool:
  """A validation record beats the running best (higher mean accuracy; None: no best yet)."""
  acc = record.get("val_accuracy")
  if acc is None or acc != acc:  # NaN
    return False
  return best is None or acc > best["accuracy"]


def best_from_record(record: dict) -> dict:
  return {"update": int(record["val_step"]), "accuracy": record["val_accuracy"], "sem": record["val_sem"]}


def best_on_disk(workdir) -> dict | None:
  """The running best an existing `<workdir>/best/summary.json` records, or None."""
  path = pathlib.Path(workdir) / BEST_DIR / "summary.json"
  try:
    summary = json.loads(path.read_text(encoding="utf-8"))
    accuracy = float(summary["val_accuracy"])
    return {"update": int(summary["updates"]), "accuracy": accuracy, "sem": summary["val_sem"]}
  except (OSError, ValueError, KeyError, TypeError):
    return None


def read_validation_records(workdir) -> list[dict]:
  """The records of `validation.jsonl` (async validation), in the order written; a last line cut
  short by a crash is left out."""
  path = pathlib.Path(workdir) / run_files.VALIDATION
  if not path.is_file():
    return []
  out = []
  for line in path.read_text(encoding="utf-8").splitlines():
    try:
      out.append(json.loads(line))
    except ValueError:
      continue
  return out


def merged_records(workdir) -> list[dict]:
  """metrics.jsonl with the validation of each update joined in: inline records as written, and
  async ones from validation.jsonl (for a step scored more than once, the last record)."""
  path = pathlib.Path(workdir) / run_files.METRICS
  records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
  latest = {int(r["step"]): r for r in read_validation_records(workdir)}
  for r in records:
    extra = latest.get(int(r["step"]))
    if extra is not None:
      r.update({k: v for k, v in extra.items() if k.startswith("val_")})
  return records
