"""Modules stay small: one over LIMIT lines says in its docstring why it is one module."""

import ast
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIMIT = 400
REASON = "Length ("  # "Length (~N lines): why this stays one module."


def _modules() -> list[pathlib.Path]:
  out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
  return [ROOT / p for p in out.stdout.split() if not p.startswith("tests/")]


def unexplained(paths) -> list[str]:
  """The modules of `paths` over LIMIT lines whose docstring gives no reason."""
  found = []
  for path in paths:
    text = pathlib.Path(path).read_text()
    if text.count("\n") > LIMIT and REASON not in (ast.get_docstring(ast.parse(text)) or ""):
      found.append(f"{path} ({text.count(chr(10))} lines)")
  return found


def test_long_modules_state_why_they_are_one_module():
  found = unexplained(_modules())
  assert not found, f"over {LIMIT} lines without a '{REASON}...' reason in the docstring: {found}"


def test_the_check_catches_a_long_module_and_accepts_a_reason(tmp_path):
  body = "x = 1\n" * (LIMIT + 1)
  bare, explained, short = tmp_path / "bare.py", tmp_path / "explained.py", tmp_path / "short.py"
  bare.write_text('"""A module."""\n' + body)
  explained.write_text('"""A module.\n\nLength (~400 lines): one table.\n"""\n' + body)
  short.write_text('"""A module."""\nx = 1\n')
  assert unexplained([bare, explained, short]) == [f"{bare} ({LIMIT + 2} lines)"]
