"""The README is a newcomer's page: short, and its layout table true to the tree."""

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _tracked_top_level() -> set[str]:
  out = subprocess.run(
    ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
  ).stdout
  return {line.split("/")[0] for line in out.splitlines() if "/" in line and not line.startswith(".")}


def _layout_rows() -> set[str]:
  section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
  return set(re.findall(r"^\| `([^`/]+)/` \|", section, flags=re.M))


def test_readme_is_at_most_10000_bytes():
  assert len(README.encode()) <= 10_000, len(README.encode())  # `wc -c`: θ and × count 2


def test_layout_table_lists_every_top_level_folder_and_nothing_else():
  assert _layout_rows() == _tracked_top_level()


def test_every_local_link_in_the_readme_exists():
  for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
    if "://" not in target:
      assert (ROOT / target).exists(), target
