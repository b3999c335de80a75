r"""Meta-training curves from a workdir's metrics.jsonl → PNG and PDF (the paper's Fig. 3 analogue).

python -m scripts.plot_training --workdir=runs/local
"""

import pathlib

from absl import flags

from meta_unsup_rules.evaluation import plots
from meta_unsup_rules.scripts import common

_WORKDIR = flags.DEFINE_string("workdir", None, "Meta-training workdir holding metrics.jsonl.")
_OUT = flags.DEFINE_string("out", None, "PNG path, a PDF beside it (default <workdir>/training.png).")
_TITLE = flags.DEFINE_string("title", None, "Figure title (default: the workdir, which names the run).")
_SMOOTH = flags.DEFINE_integer("smooth", 20, "Rolling-mean window (updates).")


def main(argv):
  del argv
  if not _WORKDIR.value:
    common.fail("--workdir is required")
  path = pathlib.Path(_WORKDIR.value) / "metrics.jsonl"
  if not path.is_file():
    common.fail(f"{path} not found: expected a meta-training workdir (scripts.meta_train writes it)")
  from meta_unsup_rules.distributed import validation

  records = validation.merged_records(_WORKDIR.value)  # with async validation's records joined in
  if not records:
    common.fail(f"{path} holds no updates yet")
  out = pathlib.Path(_OUT.value or pathlib.Path(_WORKDIR.value) / "training.png")
  title = _TITLE.value if _TITLE.value is not None else f"meta-training run {_WORKDIR.value}"
  summary = plots.plot_training(records, out, smooth=_SMOOTH.value, title=title)
  print(f"wrote {out} and {out.with_suffix('.pdf')}")
  common.emit_json({"png": str(out), "pdf": str(out.with_suffix(".pdf")), **summary})


def run():
  """The console command (pyproject.toml [project.scripts])."""
  common.run(main)


if __name__ == "__main__":
  common.run(main)
