"""docs/tutorial.ipynb runs from top to bottom (a copy, at tiny settings) and draws its figures."""

import json
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
# Tinier than the notebook's own settings: one compile of each unroll length still dominates.
OVERRIDES = {"INNER_STEPS": 100, "EVAL_EVERY": 50, "MAX_TEST": 500}
CELL_TIMEOUT_S = 600


def _parameter_cell(nb):
  cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(cells) == 1, "the notebook needs exactly one code cell tagged 'parameters'"
  return cells[0]


def test_committed_notebook_has_no_outputs_and_a_parameter_cell():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
  source = _parameter_cell(nb).source
  for name in [*OVERRIDES, "THETA", "OUT_DIR"]:
    assert f"{name} = " in source, name
  assert 'THETA = "paper_track_u1200"' in source


@pytest.mark.slow
def test_tutorial_runs_and_draws_its_figures(tmp_path, monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  out_dir = tmp_path / "figures"
  settings = {**OVERRIDES, "OUT_DIR": str(out_dir)}
  _parameter_cell(nb).source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in settings.items())
  probe = "import json\nprint('RESULT ' + json.dumps({'track': track, 'final': final_accuracy}))"
  nb.cells.append(nbformat.v4.new_code_cell(probe))
  # The kernel imports the project from the checkout, whatever it was installed as.
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
  client = NotebookClient(
    nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
  )
  client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
  assert len(images) == 2, "expected the accuracy curve and the receptive fields"
  figures = {"accuracy_tiny_mnist", "receptive_fields_tiny_mnist"}
  assert {p.name for p in out_dir.iterdir()} == {f + ext for f in figures for ext in (".png", ".pdf")}

  text = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
  result = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
  assert result["track"] == "paper"
  final = result["final"]
  assert list(final) == [
    "paper_track_u1200 (paper track)",
    "untrained θ (paper track)",
    "random init (no update)",
    "raw input (ridge on the pixels)",
  ]
  assert all(0.0 <= accuracy <= 1.0 for accuracy in final.values()), final
  assert f"after {OVERRIDES['INNER_STEPS']} steps of paper_track_u1200 (paper track)" in text
