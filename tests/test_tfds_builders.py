"""TensorFlow Datasets builders (tasks/tfds_builders.py): examples equal the raw parsers', consumer
code under ``tfds.testing.mock_data``, clear errors (exit status 2) on missing or corrupt raw files.

Reduced builds, to keep this file near a minute on one core: each builder is prepared with
``max_examples_per_split`` (the first 500 examples of every split; TFDS keeps the generator's order),
except Omniglot and two-moons, which are built whole. The comparison is against the parser's first
500 examples of each split (the parser's arrays come through the session's NumPy cache, which the
parsers filled). A full-size build of every data set was compared outside the suite (docs/data.md).
"""

import os
import pathlib
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from meta_unsup_rules import tasks  # noqa: E402
from meta_unsup_rules.tasks import data_dir as dd  # noqa: E402
from meta_unsup_rules.tasks import datasets as ds_lib  # noqa: E402
from meta_unsup_rules.tasks import tfds_builders as tb  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
SUBSET = 500
FULL = ("omniglot", "two_moons")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  tfds.display_progress_bar(False)
  return tmp_path_factory.mktemp("tfds")


def _expected(name):
  """{split: {feature: array}} in TFDS layout, from the raw parser's arrays."""
  a = ds_lib.numpy_arrays(name)

  def img(x):
    return x[..., None] if x.ndim == 3 else x

  if name in ("mnist", "fashion_mnist", "cifar10"):
    return {s: {"image": img(a[f"x_{s}"]), "label": a[f"y_{s}"]} for s in ("train", "test")}
  if name == "two_moons":
    return {s: {"point": a[f"x_{s}"], "label": a[f"y_{s}"]} for s in ("train", "test")}
  if name == "imdb":
    return {
      s: {"features": a[f"x_{s}"], "label": a[f"y_{s}"], "rating": a[f"rating_{s}"]}
      for s in ("train", "test")
    }
  if name == "omniglot":
    return {"train": {"image": img(a["x_train"]), "label": a["y_train"]}}
  if name == "imagenet":
    out = {}
    for s in ("train", "test"):
      idx = np.flatnonzero(np.isin(a["y_all"], ds_lib.imagenet_split_classes(s)))
      out[s] = {"image": a["x_all"][idx], "label": a["y_all"][idx], "index": idx}
    return out
  if name == "alphabet":
    return {"train": {"image": img(a["x"]), "label": a["y"], "font": a["font"]}}
  raise AssertionError(name)


@pytest.mark.parametrize("name", ds_lib.DATASETS)
def test_examples_equal_the_raw_parser(name, tfds_dir):
  limit = None if name in FULL else SUBSET
  d = tb.prepare(name, tfds_dir=tfds_dir, max_examples_per_split=limit)
  builder = tfds.builder(tb.TFDS_NAMES[name], data_dir=str(d))
  expected = _expected(name)
  assert sorted(builder.info.splits) == sorted(expected)
  for split, want in expected.items():
    n = len(next(iter(want.values())))
    n = n if limit is None else min(n, limit)
    src = tfds.data_source(tb.TFDS_NAMES[name], split=split, data_dir=str(d))
    assert len(src) == n, split
    got = src.__getitems__(list(range(n)))
    for key, values in want.items():
      col = np.stack([np.asarray(e[key]) for e in got])
      scalar = col.ndim == 1  # scalars come back as Python ints
      assert col.dtype == values.dtype or scalar, (split, key, col.dtype)
      np.testing.assert_array_equal(col, values[:n], err_msg=f"{name}/{split}/{key}")
  meta = builder.info.metadata
  assert meta["source_key"] == tb.source_key(name, max_examples_per_split=limit)
  raw = ds_lib.load_raw(name, ds_lib.SPLITS[name][0])
  if name in ("omniglot", "fashion_mnist", "cifar10", "alphabet", "imagenet"):
    names = builder.info.features["label"].names
    assert names == (
      list(raw.class_names) if name != "imagenet" else ds_lib.numpy_arrays(name)["classes"].tolist()
    )
  if name == "imdb":
    assert tuple(meta["vocab"]) == raw.extra["vocab"]
  if name == "alphabet":
    assert tuple(meta["font_names"]) == raw.extra["font_names"]


@pytest.mark.parametrize("name", FULL)
def test_load_via_tfds_equals_load_raw(name, tfds_dir):
  """Whole data sets: every split through TFDS equals tasks.load_raw."""
  tb.prepare(name, tfds_dir=tfds_dir)
  for split in ds_lib.SPLITS[name]:
    want = tasks.load_raw(name, split)
    got = tb.load_via_tfds(name, split, tfds_dir=tfds_dir)
    assert (got.num_classes, got.class_names, got.split) == (want.num_classes, want.class_names, want.split)
    for a, b in ((got.x, want.x), (got.y, want.y)):
      assert a.dtype == b.dtype
      np.testing.assert_array_equal(a, b)


def test_env_switch_reads_through_tfds(monkeypatch):
  """$META_UNSUP_DATA_BACKEND=tfds: the project's own loaders read through TFDS (<cache>/tfds)."""
  monkeypatch.setenv(ds_lib.DATA_BACKEND_ENV, "tfds")
  ds_lib.clear_memos()
  try:
    via = tasks.load_dataset("two_moons", "test")
    assert (tb.default_tfds_dir() / "mur_two_moons" / tb.BUILDER_VERSION).is_dir()
    monkeypatch.setenv(ds_lib.DATA_BACKEND_ENV, "numpy")
    want = tasks.load_dataset("two_moons", "test")
    np.testing.assert_array_equal(via.x, want.x)
    np.testing.assert_array_equal(via.y, want.y)
    monkeypatch.setenv(ds_lib.DATA_BACKEND_ENV, "nope")
    with pytest.raises(ValueError, match=ds_lib.DATA_BACKEND_ENV):
      tasks.load_raw("two_moons")
  finally:
    ds_lib.clear_memos()


def test_prepared_copy_is_reused_and_a_stale_one_rebuilt(tfds_dir):
  tb.prepare("two_moons", tfds_dir=tfds_dir)
  version_dir = tfds_dir / "mur_two_moons" / tb.BUILDER_VERSION
  record = next(version_dir.glob("*train.array_record*"))
  mtime = record.stat().st_mtime_ns
  tb.prepare("two_moons", tfds_dir=tfds_dir)
  assert record.stat().st_mtime_ns == mtime  # up to date: not rebuilt
  meta = version_dir / "metadata.json"
  meta.write_text(meta.read_text().replace(tb.source_key("two_moons"), "stale"))
  tb.prepare("two_moons", tfds_dir=tfds_dir)
  assert tb._stored_key(version_dir) == tb.source_key("two_moons")


def test_data_source_pickles_and_needs_no_project_code(tfds_dir):
  """Users read with tfds.data_source alone (a fresh process that never imports tasks); no TensorFlow."""
  tb.prepare("two_moons", tfds_dir=tfds_dir)
  src = tfds.data_source("mur_two_moons", split="test", data_dir=str(tfds_dir))
  again = pickle.loads(pickle.dumps(src))
  assert len(again) == 1000 and again[3]["label"] == src[3]["label"]
  code = (
    "import sys, tensorflow_datasets as tfds\n"
    f"s = tfds.data_source('mur_two_moons', split='train', data_dir={str(tfds_dir)!r})\n"
    "print(len(s), s[0]['point'].shape, 'meta_unsup_rules.tasks' in sys.modules,"
    " 'tensorflow' in sys.modules)\n"
  )
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
  assert r.returncode == 0, r.stderr
  assert r.stdout.split() == ["2000", "(2,)", "False", "False"]


def test_names_never_shadow_tfds_own_datasets():
  assert all(n.startswith("mur_") for n in tb.TFDS_NAMES.values())
  assert set(tb.TFDS_NAMES) == set(ds_lib.DATASETS)
  for std in ("mnist", "fashion_mnist", "cifar10", "imdb_reviews", "omniglot"):
    assert std not in tb.TFDS_NAMES.values()


@pytest.mark.parametrize("name", ["mnist", "cifar10", "imdb", "imagenet", "alphabet", "omniglot"])
def test_consumer_code_under_mock_data(name, tmp_path):
  """load_via_tfds on tfds.testing.mock_data's random examples: layout, dtypes, split logic."""
  with tfds.testing.mock_data(num_examples=6):
    for split in ds_lib.SPLITS[name]:
      d = tb.load_via_tfds(name, split, tfds_dir=tmp_path, prepare_first=False)
      shape = {
        "mnist": (28, 28),
        "cifar10": (32, 32, 3),
        "imdb": (1000,),
        "imagenet": (64, 64, 3),
        "alphabet": (32, 32),
        "omniglot": (105, 105),
      }[name]
      assert d.x.shape[1:] == shape and d.x.dtype == np.uint8, (split, d.x.shape)
      assert d.y.dtype == np.int32 and len(d.y) == len(d.x)
      assert ((0 <= d.y) & (d.y < d.num_classes)).all()
      if name in ("mnist", "cifar10", "imdb", "alphabet", "omniglot") and split == "train":
        assert len(d.y) == 6
      assert d.as_float().x.dtype == np.float32


# ------------------------------------------------------------------- missing / corrupt raw files


@pytest.fixture()
def mnist_copy(tmp_path):
  src = dd.resolve_data_dir()
  for rel in ds_lib.raw_files("mnist"):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / rel, tmp_path / rel)
  return tmp_path


def _corrupt(path: pathlib.Path):
  b = bytearray(path.read_bytes())
  b[1000] ^= 0xFF
  path.write_bytes(bytes(b))


def test_corrupt_raw_file_is_a_clear_error_and_prepares_nothing(mnist_copy, tmp_path_factory):
  cache, out = tmp_path_factory.mktemp("cache_c"), tmp_path_factory.mktemp("tfds_c")
  bad = mnist_copy / "mnist/t10k-images-idx3-ubyte.gz"
  _corrupt(bad)
  with pytest.raises(tasks.DataError) as e:
    tb.prepare("mnist", data_dir=mnist_copy, cache_dir=cache, tfds_dir=out)
  entry = dd.manifest()["mnist/t10k-images-idx3-ubyte.gz"]
  assert str(bad) in str(e.value) and "corrupt" in str(e.value) and entry.sha256 in str(e.value)
  assert not (out / "mur_mnist").exists()
  # The builder itself verifies too (used directly, without prepare()).
  builder = tb.MurMnist(data_dir=str(out), raw_data_dir=mnist_copy, cache_dir=cache)
  with pytest.raises(tasks.DataError, match="corrupt"):
    builder.download_and_prepare()
  assert not list((out / "mur_mnist").glob("*/*.array_record*"))


def test_cli_exits_2_on_missing_or_corrupt_files(mnist_copy, tmp_path_factory):
  cache, out = tmp_path_factory.mktemp("cache_cli"), tmp_path_factory.mktemp("tfds_cli")
  env = dict(os.environ, PYTHONPATH=str(REPO))
  args = [sys.executable, "-m", "scripts.data", "prepare_tfds", "--datasets=mnist"]
  args += [f"--data_dir={mnist_copy}", f"--cache_dir={cache}", f"--tfds_dir={out}"]
  (mnist_copy / "mnist/train-labels-idx1-ubyte.gz").unlink()
  r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2, r.stderr
  assert "error:" in r.stderr and "train-labels-idx1-ubyte.gz" in r.stderr and "missing" in r.stderr
  assert dd.manifest()["mnist/train-labels-idx1-ubyte.gz"].sha256 in r.stderr
  assert "Traceback" not in r.stderr
  shutil.copyfile(
    dd.resolve_data_dir() / "mnist/train-labels-idx1-ubyte.gz",
    mnist_copy / "mnist/train-labels-idx1-ubyte.gz",
  )
  _corrupt(mnist_copy / "mnist/train-images-idx3-ubyte.gz")
  r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and "corrupt" in r.stderr, r.stderr
  assert not (out / "mur_mnist").exists()
