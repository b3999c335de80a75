"""The released θs: `checkpoints/<name>/` of the checkout (`meta_unsup_rules/checkpoints/<name>/` when
installed), found by name from any working directory (`--theta=NAME`, `api.load_rule(NAME)`)."""

from __future__ import annotations

import pathlib

RELEASES_DIR = pathlib.Path(__file__).resolve().parent.parent / "checkpoints"


def export_dir(name_or_path) -> pathlib.Path:
  """An export directory as given, or, when that holds no theta.npz, the release of that name
  (a folder of RELEASES_DIR: "ojac_hand_clean"), from any working directory."""
  path = pathlib.Path(name_or_path).expanduser()
  release = RELEASES_DIR / str(name_or_path)
  if (
    not (path / "theta.npz").is_file() and "/" not in str(name_or_path) and (release / "theta.npz").is_file()
  ):
    return release
  return path


def release_names() -> list[str]:
  """The releases: the θ exports under checkpoints/ (folders holding theta.npz), loadable by name.

  The earlier studies' θs (experiments/earlier/thetas/, tainted lineage) are not releases: load them by path.
  """
  if not RELEASES_DIR.is_dir():
    return []
  return sorted(p.name for p in RELEASES_DIR.iterdir() if (p / "theta.npz").is_file())
