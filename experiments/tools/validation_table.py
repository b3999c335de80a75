r"""The meta-validation curves of several meta-training runs as one markdown table.

  python -m experiments.tools.validation_table \
      --runs=released=runs/ablation/released,tangential=runs/ablation/tangential_0.03 --start=0.696:0.008

Reads each run's metrics.jsonl (LABEL=WORKDIR, or LABEL=path/to/metrics.jsonl) and prints, per run,
the validation accuracy ± s.e. at every validated update (val_step), with the meta-gradients received
by then and the training meta-loss; --start adds the starting θ's validation score as update 0 (runs
that start from an export do not validate it). The last stdout line is one JSON object.
"""

import json

from absl import flags

from meta_unsup_rules.scripts import cli

_RUNS = flags.DEFINE_list("runs", [], "LABEL=WORKDIR entries.")
_START = flags.DEFINE_list(
  "start", [], "Validation score of each run's start as MEAN:SEM (one per run, or one for all)."
)


def read_run(entry: str) -> tuple[str, list[dict]]:
  label, p = cli.labelled_path(entry, "runs", "WORKDIR", "metrics.jsonl")
  try:
    records = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
  except (OSError, ValueError) as e:
    cli.fail(f"{p}: cannot read metrics.jsonl ({type(e).__name__}: {e})")
  return label, records


def validation_points(records: list[dict]) -> list[dict]:
  return [
    {
      "update": r["val_step"],
      "accuracy": r["val_accuracy"],
      "sem": r["val_sem"],
      "meta_grads": r.get("meta_grads_total"),
      "meta_loss": r.get("meta_loss"),
    }
    for r in records
    if r.get("val_accuracy") is not None
  ]


def main(argv):
  del argv
  if not _RUNS.value:
    cli.fail("--runs is required: LABEL=WORKDIR,...")
  starts = []
  for s in _START.value:
    mean, sep, sem = s.partition(":")
    try:
      starts.append((float(mean), float(sem)) if sep else (float(mean), 0.0))
    except ValueError:
      cli.fail(f"--start entry {s!r}: expected MEAN:SEM")
  if starts and len(starts) not in (1, len(_RUNS.value)):
    cli.fail(f"--start has {len(starts)} entries: expected 1 or one per run ({len(_RUNS.value)})")
  table = {}
  for i, entry in enumerate(_RUNS.value):
    label, records = read_run(entry)
    points = validation_points(records)
    if starts:
      mean, sem = starts[i] if len(starts) > 1 else starts[0]
      points = [{"update": 0, "accuracy": mean, "sem": sem, "meta_grads": 0, "meta_loss": None}] + points
    table[label] = points
  updates = sorted({p["update"] for pts in table.values() for p in pts})
  print("| run | " + " | ".join(f"update {u}" for u in updates) + " |")
  print("| --- | " + " | ".join("---" for _ in updates) + " |")
  for label, pts in table.items():
    by_update = {p["update"]: p for p in pts}
    cell = lambda p: f"{p['accuracy']:.3f} ± {p['sem']:.3f}"
    cells = [cell(by_update[u]) if u in by_update else "—" for u in updates]
    print(f"| {label} | " + " | ".join(cells) + " |")
  cli.emit_json({"runs": table})


if __name__ == "__main__":
  cli.run(main)
