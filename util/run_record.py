"""What made a result file: the commit (and whether the tree was dirty), package versions, command line.

Every config.json / results.json / summary.json / benchmark JSON the project writes carries
`RECORD_KEY: run_record()`, so a number found in a file months later names the code, the
libraries and the command that produced it. Git is asked with a short timeout and fails soft:
outside a checkout (an installed package, a copied folder) the commit is null, never an error.
"""

from __future__ import annotations

import functools
import importlib.metadata
import pathlib
import platform
import shlex
import subprocess
import sys
from typing import Any, Mapping

RECORD_KEY = "run_record"
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "ray")
_ROOT = pathlib.Path(__file__).resolve().parent.parent
_GIT_TIMEOUT_SEC = 5


def _git(*args: str) -> str | None:
  try:
    out = subprocess.run(
      ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=_GIT_TIMEOUT_SEC, check=True
    )
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
  """(commit, dirty) of the checkout holding this code, (None, None) outside one.

  Read once per process: the code a process runs is the code it imported at start. A git
  repository that merely encloses an installed copy (a venv inside some other checkout) is not
  this code's checkout, so its top level must be this folder.
  """
  top = _git("rev-parse", "--show-toplevel")
  if top is None or pathlib.Path(top).resolve() != _ROOT:
    return None, None
  commit = _git("rev-parse", "HEAD")
  status = _git("status", "--porcelain", "--untracked-files=no")
  if commit is None:
    return None, None
  return commit, (None if status is None else bool(status))


def package_versions(names=PACKAGES) -> dict[str, str | None]:
  """Installed versions from the package metadata (nothing is imported); None when absent."""
  out = {}
  for name in names:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def command_line() -> str:
  """The command as typed (`python -m scripts.evaluate --task=...`), shell-quoted."""
  return shlex.join(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])


def run_record() -> dict[str, Any]:
  commit, dirty = git_state()
  return {
    "commit": commit,
    "dirty": dirty,
    "versions": {"python": platform.python_version(), **package_versions()},
    "command": command_line(),
  }


def with_record(obj: Mapping[str, Any]) -> dict[str, Any]:
  """`obj` plus the run record under RECORD_KEY (replacing one it already carries)."""
  return {**obj, RECORD_KEY: run_record()}


def without_record(obj: Mapping[str, Any]) -> dict[str, Any]:
  """`obj` without its run record: what a reader of a config.json builds a config from."""
  return {k: v for k, v in obj.items() if k != RECORD_KEY}
