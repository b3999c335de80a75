"""Every number of the README's Results table comes from a committed result file: this map names the
file, method and readout of each cell, and the test checks the cell to its printed precision."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = {"Tiny MNIST": "tiny_mnist", "Tiny Fashion": "tiny_fashion_mnist"}
FLOORS = "docs/results/floors/{task}_10seeds.json"
# README row label -> (result file with {task}, method row); readout: ridge, final step.
SOURCES = {
  "`paper_track_u1200`": ("experiments/paper_track/results/paper_track_u1200_{task}_10seeds.json", "learned"),
  "`ojac_clean_u50`": ("experiments/oja_variant/results/ojac_clean_u50_{task}_10seeds.json", "learned"),
  "`ojac_hand_clean`": ("experiments/oja_variant/results/ojac_hand_clean_{task}_10seeds.json", "learned"),
  "untrained θ (`configs/local.py` rule)": (FLOORS, "learned"),
  "random init (no update)": (FLOORS, "random_init"),
  "raw input (ridge on the pixels)": (FLOORS, "raw_input"),
  "Oja's subspace rule": (FLOORS, "hebbian"),
  "PCA to 32 dims": (FLOORS, "pca"),
  "VAE": (FLOORS, "vae"),
  "SimCLR-style contrastive": (FLOORS, "contrastive"),
  "supervised on the 100 labels": (FLOORS, "supervised"),
  "`ojac_u250` (tainted lineage)": ("experiments/earlier/results/ojac_u250_{task}.json", "learned"),
}
CELL = re.compile(r"^\*{0,2}(\d\.\d{3}) ± (\d\.\d{3})\*{0,2}$")


def _results_table() -> tuple[list[str], list[list[str]]]:
  text = (ROOT / "README.md").read_text(encoding="utf-8")
  section = text.split("\n## Results", 1)[1].split("\n## ", 1)[0]
  lines = [l for l in section.splitlines() if l.startswith("|")]
  header = [c.strip() for c in lines[0].strip("|").split("|")]
  rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
  return header, rows


def test_every_row_of_the_results_table_has_a_source():
  _, rows = _results_table()
  labels = [r[0] for r in rows]
  assert set(labels) == set(SOURCES), set(labels) ^ set(SOURCES)


@pytest.mark.parametrize("label", sorted(SOURCES))
def test_each_cell_is_its_file_to_the_printed_precision(label):
  header, rows = _results_table()
  (row,) = [r for r in rows if r[0] == label]
  path_pattern, method = SOURCES[label]
  for column, task in COLUMNS.items():
    cell = row[header.index(column)]
    m = CELL.match(cell)
    assert m, f"{label} / {column}: {cell!r} is not 'mean ± s.e.'"
    path = ROOT / path_pattern.format(task=task)
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["seeds"] == list(range(10)) and result["inner_steps"] == 1000, path
    final = result["final"][method]["ridge"]
    assert (f"{final['mean']:.3f}", f"{final['sem']:.3f}") == m.groups(), f"{label} / {column} vs {path}"
