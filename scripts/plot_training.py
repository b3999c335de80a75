r"""Meta-training curves from a workdir's metrics.jsonl → PNG and PDF (the paper's Fig. 3 analogue).

  python -m scripts.plot_training --workdir=runs/local
  python -m scripts.plot_training --workdir=runs/paper_track \
      --floors=docs/results/floors/alphabet_val_seeds1000.json

Validation records (inline, or an evaluator's validation.jsonl) add a row with the floors as dashed
lines: raw input, Oja's rule and random init from an evaluation of the validation task on the same
seeds (--floors; by default docs/results/floors/<validation task>_seeds<first seed>.json when the
checkout has it). The default output, <workdir>/training.png, is ignored by git.
"""

import pathlib

from absl import flags

from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.learned_update import ExportError
from meta_unsup_rules.scripts import cli, evaluation_args

_WORKDIR = flags.DEFINE_string("workdir", None, "Meta-training workdir holding metrics.jsonl.")
_OUT = flags.DEFINE_string("out", None, "PNG path, a PDF beside it (default <workdir>/training.png).")
_TITLE = flags.DEFINE_string("title", None, "Figure title (default: the workdir, which names the run).")
_SMOOTH = flags.DEFINE_integer("smooth", 20, "Rolling-mean window (updates).")
_FLOORS = flags.DEFINE_string(
  "floors", None, "results.json of the validation task's floors (raw_input, hebbian, random_init); 'none'."
)
FLOOR_METHODS = {"raw_input": "raw input", "hebbian": "Oja's rule", "random_init": "random init"}


def _floors(workdir: pathlib.Path) -> dict:
  """{label: final ridge accuracy} of the floors file (--floors, or the validation task's default)."""
  import json

  from meta_unsup_rules.learned_update import export

  path = _FLOORS.value
  if path == "none":
    return {}
  if path is None:
    try:
      v = export.load_config_json(workdir / "config.json").validation
    except (ExportError, AttributeError):
      return {}
    default = evaluation_args.CHECKOUT / "docs" / "results" / "floors" / f"{v.task}_seeds{v.seed}.json"
    if not default.is_file():
      return {}
    path = str(default)
  try:
    result = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    final = result["final"]
  except (OSError, ValueError, KeyError) as e:
    cli.fail(f"--floors={path}: {e}; expected an evaluation's results.json (scripts.evaluate writes it)")
  return {label: final[m]["ridge"]["mean"] for m, label in FLOOR_METHODS.items() if m in final}


def main(argv):
  del argv
  if not _WORKDIR.value:
    cli.fail("--workdir is required")
  path = pathlib.Path(_WORKDIR.value) / "metrics.jsonl"
  if not path.is_file():
    cli.fail(f"{path} not found: expected a meta-training workdir (scripts.meta_train writes it)")
  from meta_unsup_rules.distributed import validation

  records = validation.merged_records(_WORKDIR.value)  # with async validation's records joined in
  if not records:
    cli.fail(f"{path} holds no updates yet")
  out = pathlib.Path(_OUT.value or pathlib.Path(_WORKDIR.value) / "training.png")
  title = _TITLE.value if _TITLE.value is not None else f"meta-training run {_WORKDIR.value}"
  floors = _floors(pathlib.Path(_WORKDIR.value))
  summary = plots.plot_training(records, out, smooth=_SMOOTH.value, title=title, floors=floors)
  print(f"wrote {out} and {out.with_suffix('.pdf')}")
  cli.emit_json({"png": str(out), "pdf": str(out.with_suffix(".pdf")), **summary})


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
