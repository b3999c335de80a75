"""docs/data_sources.md documents every raw file the code checks, with the checksum the code expects."""

import pathlib
import re

import pytest

from meta_unsup_rules import tasks
from meta_unsup_rules.tasks import data_dir as dd

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "data_sources.md"


def test_every_checksum_the_code_verifies_is_in_the_doc():
  text = DOC.read_text(encoding="utf-8")
  rows = {
    m.group(1): (m.group(2), m.group(3))
    for m in re.finditer(r"\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", text)
  }
  missing = []
  for name, entry in dd.manifest().items():
    if rows.get(name) != (f"{entry.bytes:,}", entry.sha256):
      missing.append(f"{name}: {entry.bytes} bytes, sha256 {entry.sha256} (doc: {rows.get(name)})")
  assert not missing, "docs/data_sources.md lacks or misstates:\n" + "\n".join(missing)
  assert set(rows) == set(dd.manifest()), sorted(set(rows) ^ set(dd.manifest()))


def test_data_errors_point_to_the_doc(tmp_path):
  assert dd.SOURCES_DOC == DOC and DOC.is_file()
  with pytest.raises(tasks.DataError, match="docs/data_sources.md") as missing:
    dd.resolve_data_dir(tmp_path / "nowhere")
  assert str(DOC) in str(missing.value)
  bad = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
  bad.parent.mkdir()
  bad.write_bytes(b"x" * dd.manifest()["mnist/t10k-labels-idx1-ubyte.gz"].bytes)
  with pytest.raises(tasks.DataError, match="corrupt") as corrupt:
    dd.raw_file(tmp_path, "mnist/t10k-labels-idx1-ubyte.gz", cache_dir=tmp_path / "cache")
  assert str(DOC) in str(corrupt.value) and "SOURCES.md" not in str(corrupt.value)
