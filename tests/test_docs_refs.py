"""Citations of the method page: no stale "spec §" left, every "docs/method.md §N" resolves.

docs/method.md is the project's own description of the method; code and docs cite its
numbered sections. A citation names a section ("§2.2") or a range ("§6–7"), and each end
must be a heading "## N." or "### N" of that page.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
METHOD = ROOT / "docs" / "method.md"
STALE = "spec" + " §"  # split so that this file does not match itself
SECTION = r"\d+(?:\.\d+)*"
CITATION = re.compile(rf"docs/method\.md §({SECTION})(?:\s*[–-]\s*({SECTION}))?")
HEADING = re.compile(rf"^#{{2,3}} ({SECTION})\.?\s", re.MULTILINE)


def _tracked_text_files() -> list[pathlib.Path]:
  try:
    out = subprocess.run(
      ["git", "-C", str(ROOT), "ls-files", "*.py", "*.md"],
      capture_output=True,
      text=True,
      timeout=60,
      check=True,
    ).stdout
  except (OSError, subprocess.SubprocessError):
    pytest.skip("not a git checkout")
  return [ROOT / p for p in out.splitlines() if (ROOT / p).is_file()]


def _sections() -> set[str]:
  return set(HEADING.findall(METHOD.read_text(encoding="utf-8")))


def test_method_page_has_the_numbered_sections():
  sections = _sections()
  assert {str(n) for n in range(1, 10)} <= sections
  assert {"2.1", "2.2"} <= sections


def test_no_file_outside_tests_cites_the_private_spec():
  offenders = []
  for path in _tracked_text_files():
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "tests":
      continue
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
      if STALE in line:
        offenders.append(f"{rel}:{i}")
  assert not offenders, f'"{STALE}" citations left (cite docs/method.md §N instead): {offenders}'


def test_every_method_citation_names_an_existing_section():
  sections = _sections()
  bad, found = [], 0
  for path in _tracked_text_files():
    if path == pathlib.Path(__file__).resolve():
      continue
    rel = path.relative_to(ROOT)
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
      for match in CITATION.finditer(line):
        found += 1
        for end in match.groups():
          if end is not None and end not in sections:
            bad.append(f"{rel}:{i}: §{end}")
  assert found > 0, "no docs/method.md citation found: the scan is broken"
  assert not bad, f"citations of missing docs/method.md sections: {bad}"


def test_citation_pattern_reads_sections_and_ranges():
  assert CITATION.search("(docs/method.md §2.2, x)").groups() == ("2.2", None)
  assert CITATION.search("(docs/method.md §6–7)").groups() == ("6", "7")
  assert CITATION.search("docs/method.md §9 open points").groups() == ("9", None)
