"""What an evaluation writes: results.csv / results.json / accuracy.png, and Markdown tables.

Several runs of one task (e.g. the baselines with an untrained θ, then a shipped θ) are
merged into one table column, each learned row named by its θ (`merge_results`).
"""

from __future__ import annotations

import csv
import io
import pathlib
import time
from typing import Sequence

from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.evaluation.protocols import READOUTS
from meta_unsup_rules.evaluation.runner import METHODS
from meta_unsup_rules.util import run_record, tensorboard
from meta_unsup_rules.util.files import atomic_write_bytes, atomic_write_json

CSV_FIELDS = ("task", "protocol", "method", "step", "readout", "mean", "sem", "ci95", "n_seeds", "values")


def results_csv(result: dict) -> str:
  """One row per method × step × readout; per-seed values joined by ';'."""
  text = io.StringIO(newline="")
  w = csv.DictWriter(text, CSV_FIELDS)
  w.writeheader()
  for row in result["rows"]:
    w.writerow(
      {
        "task": result["task"],
        "protocol": result["protocol"],
        **{k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS[2:9]},
        "values": ";".join(f"{v:.6g}" for v in row["values"]),
      }
    )
  return text.getvalue()


def new_out_dir(root, name: str, theta: str, now: float | None = None) -> pathlib.Path:
  """A folder of this evaluation's own, `<root>/<name>/<θ name>-<YYYYmmdd-HHMMSS>` (θ name: the
  export folder's name, or "random"), never one an earlier evaluation wrote (a suffix -2, -3, ...
  when two start in the same second): the default output of scripts.evaluate and scripts.sweep."""
  label = "random" if theta in ("random", "", None) else pathlib.Path(str(theta).rstrip("/")).name
  stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
  base = pathlib.Path(root) / name / f"{label}-{stamp}"
  path, n = base, 1
  while path.exists():
    n += 1
    path = base.with_name(f"{base.name}-{n}")
  return path


def write_outputs(result: dict, out_dir) -> dict[str, str]:
  """results.csv, results.json (strict JSON, with the run record), accuracy.png and TensorBoard curves
  (tensorboard/<method>/: accuracy/<readout> against inner steps) in out_dir; returns their paths."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json", "png": out_dir / "accuracy.png"}
  atomic_write_bytes(paths["csv"], results_csv(result).encode())
  atomic_write_json(paths["json"], run_record.with_record(result))
  plots.plot_result(result, paths["png"])
  tensorboard.write_curves(out_dir / "tensorboard", result["rows"])
  return {k: str(v) for k, v in paths.items()}


# ----------------------------------------------------------------------------- merged runs


def _learned_label(result: dict) -> str:
  theta = result.get("theta")
  if theta is None:
    return "learned"
  return "learned (untrained θ)" if theta == "random" else f"learned ({theta})"


def merge_results(results: Sequence[dict]) -> list[dict]:
  """Results of one task at one number of inner steps become one column.

  Each run's learned rule is named by its θ ("learned (untrained θ)" for --theta=random),
  so e.g. a baselines run with a random θ and a run of a shipped θ form one table column;
  a method present in both (random init) keeps the first run's value.
  """
  merged = {}
  for r in results:
    key = (r["task"], r["inner_steps"])
    final = {(_learned_label(r) if m == "learned" else m): v for m, v in r["final"].items()}
    if key not in merged:
      merged[key] = {**r, "final": dict(final), "readouts": list(r.get("readouts", READOUTS))}
    else:
      into = merged[key]
      for m, v in final.items():
        into["final"].setdefault(m, v)
      into["readouts"] += [x for x in r.get("readouts", READOUTS) if x not in into["readouts"]]
  return list(merged.values())


def known_methods(merged: Sequence[dict]) -> list[str]:
  """The methods of merged results in METHODS order, the learned rows (by θ) first."""
  present = {m for r in merged for m in r["final"]}
  learned = sorted(m for m in present if m.startswith("learned"))
  order = [label for m in METHODS for label in (learned if m == "learned" else [m])]
  return [m for m in order if m in present]


# ----------------------------------------------------------------------------- Markdown


def _cell(entry) -> str:
  if not entry or entry.get("mean") is None:
    return "—"
  if entry.get("sem") is None:  # one seed: no standard error
    return f"{entry['mean']:.3f}"
  return f"{entry['mean']:.3f} ± {entry['sem']:.3f}"


def results_markdown(results: Sequence[dict]) -> str:
  """One table per readout: rows = methods, columns = tasks, cells = final mean ± s.e."""
  results = merge_results(results)
  methods = known_methods(results)
  present = {m for r in results for m in r["final"]}
  methods += sorted(present - set(methods))
  readouts = list(dict.fromkeys(x for r in results for x in r["readouts"]))
  names = [r["task"] for r in results]
  # The same task at several step counts: say which column is which.
  cols = [
    f"{r['task']} ({r['inner_steps']} steps)" if names.count(r["task"]) > 1 else r["task"] for r in results
  ]
  out = []
  for readout in readouts:
    out.append(f"### {readout} readout: final test accuracy (mean ± s.e. over seeds)\n")
    out.append("| method | " + " | ".join(cols) + " |")
    out.append("| --- |" + " --- |" * len(cols))
    for m in methods:
      cells = [_cell(r["final"].get(m, {}).get(readout)) for r in results]
      out.append(f"| {m} | " + " | ".join(cells) + " |")
    out.append("")
  return "\n".join(out)
