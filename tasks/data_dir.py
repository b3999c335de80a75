"""Data directory, raw-file integrity checks and the preprocessed-array cache.

Data directory (the raw files described in ``docs/data_sources.md``, and by ``python -m scripts.data
describe`` / ``meta-unsup-data describe``: origins, formats, checksums and layout), first that applies:

1. the ``--data_dir`` flag (``resolve_data_dir(flag_value)``; a command exports it to the
   environment for its workers, remembering that it came from the flag);
2. the environment variable ``META_UNSUP_DATA_DIR``;
3. in a checkout (the folder holding ``tasks/`` also holds ``pyproject.toml``): ``../shared/data``
   beside the checkout;
4. the per-user folder ``$XDG_DATA_HOME/meta_unsup/data`` (``~/.local/share/meta_unsup/data``),
   where an installed package looks.

The current working directory plays no part. A flag or environment value that names a missing
folder is an error naming that source (no fall-back).

Integrity: every raw file is checked against ``tasks/manifest.json`` (file, sha256,
bytes, origin) before it is read. A missing or corrupt file raises :class:`DataError`
naming the file, the expected checksum and where the file comes from. Nothing is ever
downloaded. Checks are memoised per process and, across processes, by a marker in
``<cache>/verified/`` keyed on (absolute path, size, mtime_ns): a file that is
rewritten (new mtime or size) is hashed again.

Cache: preprocessed arrays go to ``META_UNSUP_CACHE_DIR`` (default ``~/.cache/meta_unsup``)
as ``<name>-<key>.npz``; the key hashes the raw files' sha256, the preprocessing version
and parameters. Entries are written atomically (``util.files``) only after the whole array
set was built, so a failed or interrupted build leaves no partial cache entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import threading
from typing import Callable, Iterable, Mapping

import numpy as np

from meta_unsup_rules.util.files import atomic_save_npz, atomic_write_bytes

DATA_DIR_ENV = "META_UNSUP_DATA_DIR"
CACHE_DIR_ENV = "META_UNSUP_CACHE_DIR"
DEFAULT_CACHE_DIR = "~/.cache/meta_unsup"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST_PATH = pathlib.Path(__file__).resolve().parent / "manifest.json"
SOURCES_DOC = REPO_ROOT / "docs" / "data_sources.md"


def sources_doc() -> str:
  """Where the data's origins are documented: the checkout's docs/data_sources.md, or (installed,
  without docs) the source repository's page and the manifest that the package carries."""
  if SOURCES_DOC.is_file():
    return str(SOURCES_DOC)
  return f"docs/data_sources.md of the source repository; the installed {MANIFEST_PATH} lists every file"


DATA_DIR_SOURCE_ENV = "META_UNSUP_DATA_DIR_SOURCE"  # "--data_dir" when the flag set DATA_DIR_ENV
_HINT = (
  f"Pass --data_dir or set {DATA_DIR_ENV} to a folder holding mnist/, fashion_mnist/, imdb/, cifar10/, "
  "omniglot/ and tiny_imagenet/ with the raw files that tasks/manifest.json lists (origin, sha256, place); "
  f"how to get each file: {sources_doc()}; `meta-unsup-data describe` (python -m scripts.data describe) "
  "checks a folder."
)


def user_data_dir() -> pathlib.Path:
  """The per-user default: $XDG_DATA_HOME/meta_unsup/data (~/.local/share/meta_unsup/data)."""
  base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
  return pathlib.Path(base).expanduser() / "meta_unsup" / "data"


def is_checkout() -> bool:
  """Whether this code runs from a source checkout (not an installed package)."""
  return (REPO_ROOT / "pyproject.toml").is_file()


class DataError(Exception):
  """A raw data file (or the data directory) is missing, unreadable or corrupt."""


# --------------------------------------------------------------------------- dirs


def _default_candidates() -> list[tuple[str, pathlib.Path]]:
  out = []
  if is_checkout():
    out.append(("the checkout's ../shared/data", REPO_ROOT / ".." / "shared" / "data"))
  out.append(("the per-user default", user_data_dir()))
  return out


def resolve_data_dir(flag_value: str | os.PathLike | None = None) -> pathlib.Path:
  """Flag > env ``META_UNSUP_DATA_DIR`` > the checkout's ``../shared/data`` > the per-user folder."""
  env_source = os.environ.get(DATA_DIR_SOURCE_ENV) or DATA_DIR_ENV
  for source, value in (("--data_dir", flag_value), (env_source, os.environ.get(DATA_DIR_ENV))):
    if value:
      path = pathlib.Path(value).expanduser()
      if not path.is_dir():
        raise DataError(f"data directory {str(path)!r} (from {source}) does not exist. {_HINT}")
      return path.resolve()
  candidates = _default_candidates()
  for _, path in candidates:
    if path.is_dir():
      return path.resolve()
  tried = "; ".join(f"{what}: {p}" for what, p in candidates)
  raise DataError(f"no data directory found (no --data_dir, no {DATA_DIR_ENV}; tried {tried}). {_HINT}")


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """Argument > env ``META_UNSUP_CACHE_DIR`` > ``~/.cache/meta_unsup`` (not created here)."""
  value = cache_dir or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
  return pathlib.Path(value).expanduser().resolve()


def define_data_dir_flag() -> None:
  """Defines absl flag ``--data_dir`` (default None: env / ../shared/data), if not defined yet."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  if "data_dir" not in flags.FLAGS:
    flags.DEFINE_string(
      "data_dir",
      None,
      f"Folder with the raw data sets (default: ${DATA_DIR_ENV}, else ../shared/data beside a "
      f"checkout, else {user_data_dir()}).",
    )

    # Exported at flag parsing, before main starts Ray or loads data, so that every loader
    # and every Ray worker (which inherits the environment) sees the same folder.
    def _export(value):
      if value:
        os.environ[DATA_DIR_ENV] = str(pathlib.Path(value).expanduser().resolve())
        os.environ[DATA_DIR_SOURCE_ENV] = "--data_dir"
      return True

    flags.register_validator("data_dir", _export)


# ----------------------------------------------------------------------- manifest


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
  file: str  # path relative to the data directory, '/'-separated
  sha256: str
  bytes: int
  origin: str


_manifest_cache: dict[str, ManifestEntry] | None = None


def manifest() -> dict[str, ManifestEntry]:
  global _manifest_cache
  if _manifest_cache is None:
    with open(MANIFEST_PATH, encoding="utf-8") as f:
      raw = json.load(f)
    _manifest_cache = {e["file"]: ManifestEntry(**e) for e in raw["files"]}
  return _manifest_cache


# ------------------------------------------------------------------- verification

_verified: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def clear_memos() -> None:
  """Forgets per-process verification results (used to measure cold loads)."""
  with _lock:
    _verified.clear()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while True:
      block = f.read(chunk)
      if not block:
        break
      h.update(block)
  return h.hexdigest()


def _marker_path(cache_dir: pathlib.Path, path: pathlib.Path) -> pathlib.Path:
  return cache_dir / "verified" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")


def verify_file(
  path: str | os.PathLike,
  expected_sha256: str,
  *,
  what: str = "",
  origin: str = "",
  expected_bytes: int | None = None,
  cache_dir: str | os.PathLike | None = None,
) -> pathlib.Path:
  """Checks ``path`` against ``expected_sha256``; raises DataError naming file, checksum, origin."""
  path = pathlib.Path(path).absolute()
  detail = f"expected sha256 {expected_sha256}"
  if expected_bytes is not None:
    detail += f", {expected_bytes} bytes"
  where = f" Origin: {origin}." if origin else ""
  label = f"{what} " if what else ""
  try:
    st = path.stat()
  except OSError as e:
    raise DataError(
      f"{label}file {path} is missing or unreadable ({e.strerror}); {detail}.{where} {_HINT}"
    ) from None
  key = (str(path), st.st_size, st.st_mtime_ns)
  with _lock:
    if _verified.get(key) == expected_sha256:
      return path
  if expected_bytes is not None and st.st_size != expected_bytes:
    raise DataError(
      f"{label}file {path} is corrupt: {st.st_size} bytes; {detail}.{where} Replace it with an intact "
      f"copy (how to obtain it: {sources_doc()})."
    )
  cdir = resolve_cache_dir(cache_dir)
  marker = _marker_path(cdir, path)
  try:
    rec = json.loads(marker.read_text())
    if (rec.get("path"), rec.get("size"), rec.get("mtime_ns"), rec.get("sha256")) == (
      key[0],
      key[1],
      key[2],
      expected_sha256,
    ):
      with _lock:
        _verified[key] = expected_sha256
      return path
  except (OSError, ValueError):
    pass
  try:
    actual = sha256_file(path)
  except OSError as e:
    raise DataError(f"{label}file {path} is unreadable ({e}); {detail}.{where}") from None
  if actual != expected_sha256:
    raise DataError(
      f"{label}file {path} is corrupt: sha256 {actual}; {detail}.{where} Replace it with an intact "
      f"copy (how to obtain it: {sources_doc()})."
    )
  with _lock:
    _verified[key] = expected_sha256
  try:
    atomic_write_bytes(
      marker,
      json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": expected_sha256}).encode(),
    )
  except OSError:
    pass  # read-only cache: only the per-process memo applies
  return path


def raw_file(
  data_dir: str | os.PathLike | None, rel: str, cache_dir: str | os.PathLike | None = None
) -> pathlib.Path:
  """Absolute path of manifest file ``rel`` in the data directory, after verifying it."""
  entry = manifest()[rel]
  base = resolve_data_dir(data_dir)
  return verify_file(
    base / rel, entry.sha256, what=rel, origin=entry.origin, expected_bytes=entry.bytes, cache_dir=cache_dir
  )


# -------------------------------------------------------------------------- cache


def cache_key(*parts) -> str:
  return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_arrays(
  name: str,
  key_parts: Iterable,
  build: Callable[[], Mapping[str, np.ndarray]],
  cache_dir: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
  """Loads ``<cache>/<name>-<key>.npz`` or builds it with ``build()`` and stores it atomically."""
  path = resolve_cache_dir(cache_dir) / f"{name}-{cache_key(name, *key_parts)}.npz"
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except FileNotFoundError:
    pass
  except Exception:  # pylint: disable=broad-except
    pass  # unreadable entry (truncated, foreign): rebuild and replace it
  arrays = {k: np.ascontiguousarray(v) for k, v in build().items()}
  try:
    atomic_save_npz(path, arrays)
  except OSError:
    pass  # read-only or full cache folder: still return the arrays
  return arrays
