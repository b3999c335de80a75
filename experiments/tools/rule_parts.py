r"""Which parts of the rule a θ relies on: evaluation only, each ΔW term left out in turn and each other
design switch flipped (learned_update/rule.py `rule.terms`, `feedback`, `unit_mixing`, `top_delta`).

  python -m experiments.tools.rule_parts --theta=paper_track_u1200 --task=alphabet_val --seeds=10 \
      --config.seed=1000 --out=experiments/rule_parts/results/paper_track_u1200_alphabet_val.json

For every condition: the θ's base model (its export's, 4×128+32 for the releases) trained for
--inner_steps unlabelled steps with the rule so switched, 10-shot ridge (and logistic) readout, the same
seeds, networks, streams and support sets for every condition, so each is compared with the θ as
released by its paired difference per seed (mean ± s.e. over seeds). Writes the JSON (after each
condition: a re-run of the same command keeps the conditions already scored), a Markdown table
beside it and, with --figure, a bar chart of the differences.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
from absl import flags

from experiments.tools.switch_conditions import conditions
from experiments.tools.trends import paired_difference
from meta_unsup_rules.evaluation import plots, runner
from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.scripts import cli, config_args, evaluation_args
from meta_unsup_rules.util import files, run_record

_CONFIG, _ = evaluation_args.define_evaluation_flags(
  "Config: the evaluation settings (the θ brings its rule)."
)
_OUT = flags.DEFINE_string("out", None, "JSON of the numbers (a Markdown table is written beside it).")
_FIGURE = flags.DEFINE_string("figure", None, "PNG (and PDF) of the paired differences.")
_CONDITIONS = flags.DEFINE_list("conditions", [], "Subset of the conditions (default: all).")


def main(argv):
  del argv
  if not _OUT.value:
    cli.fail("--out is required (the JSON of the numbers)")
  cfg = config_args.apply_aliases(
    _CONFIG.value, config_args.EVALUATION_ALIASES, {"evaluation.methods": ("learned",)}
  )
  s = evaluation_args.set_up_evaluation(cfg)
  named = conditions(s.cfg)
  unknown = [c for c in _CONDITIONS.value if c not in named]
  if unknown:
    cli.fail(f"--conditions: unknown {unknown}; the conditions are {list(named)}")
  chosen = {
    k: v for k, v in named.items() if not _CONDITIONS.value or k in _CONDITIONS.value or k == "as released"
  }
  result = {
    "theta": s.theta,
    "task": s.task.name,
    "seeds": s.seeds,
    "inner_steps": s.inner_steps,
    "conditions": {},
  }
  out = pathlib.Path(_OUT.value)
  done = _finished_conditions(out, result)
  base = None
  for name, fields in chosen.items():
    if name in done:  # scored by an interrupted run of the same command: kept, not re-run
      result["conditions"][name] = done[name]
      base = np.asarray(done[name]["values"], np.float64) if base is None else base
      continue
    c = s.cfg.copy_and_resolve_references()
    with c.rule.ignore_type():
      c.rule.update(fields)
    rule.validate_config(c.rule)
    bar, log = cli.readout_progress(
      f"{name}", len(s.seeds) * len(runner.eval_points(s.inner_steps, s.eval_every))
    )
    r = runner.run_evaluation(dataclasses.replace(s, cfg=c, methods=["learned"]), log=log)
    bar.close()
    row = next(
      x
      for x in r["rows"]
      if x["method"] == "learned" and x["readout"] == "ridge" and x["step"] == s.inner_steps
    )
    values = np.asarray(row["values"], np.float64)
    base = values if base is None else base
    result["conditions"][name] = {
      "rule": {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()},
      "mean": row["mean"],
      "sem": row["sem"],
      "values": row["values"],
      "paired_vs_released": paired_difference(values, base),
      "logistic": r["final"]["learned"]["logistic"],
    }
    files.atomic_write_json(out, run_record.with_record(result))  # each condition kept as it ends
  files.atomic_write_json(out, run_record.with_record(result))
  out.with_suffix(".md").write_text(table(result), encoding="utf-8")
  if _FIGURE.value:
    plots.plot_rule_parts(result, _FIGURE.value)
  print(table(result))
  cli.emit_json({k: result[k] for k in ("theta", "task", "inner_steps")})


def _finished_conditions(out: pathlib.Path, result: dict) -> dict:
  """The conditions an earlier run of the same θ, task, seeds and steps wrote to `out`."""
  if not out.is_file():
    return {}
  earlier = json.loads(out.read_text(encoding="utf-8"))
  same = all(earlier.get(k) == result[k] for k in ("theta", "task", "seeds", "inner_steps"))
  if not same or "as released" not in earlier.get("conditions", {}):
    return {}
  return earlier["conditions"]


def table(result: dict) -> str:
  lines = [
    f"{result['task']}, θ {pathlib.Path(str(result['theta'])).name}, ridge readout after "
    f"{result['inner_steps']} steps, seeds {result['seeds'][0]}–{result['seeds'][-1]}",
    "",
    "| condition | accuracy | Δ vs as released (paired) |",
    "| --- | --- | --- |",
  ]
  for name, c in result["conditions"].items():
    d = c["paired_vs_released"]
    delta = "—" if name == "as released" else f"{d['mean']:+.3f} ± {d['sem']:.3f}"
    lines.append(f"| {name} | {c['mean']:.3f} ± {c['sem']:.3f} | {delta} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  cli.run(main)
