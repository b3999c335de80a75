"""TensorFlow Datasets builders for every data set the project reads (no TensorFlow needed).

=============  ====================  ===================================================================
project name   TFDS name             TFDS splits and features
=============  ====================  ===================================================================
mnist          mur_mnist             train 60k, test 10k; image 28x28x1 uint8, label (10)
fashion_mnist  mur_fashion_mnist     train 60k, test 10k; image 28x28x1 uint8, label (10 names)
imdb           mur_imdb              train 25k, test 25k; features [1000] uint8 (binary presence of the
                                     metadata's ``vocab``), label (negative/positive), rating int8
cifar10        mur_cifar10           train 50k, test 10k; image 32x32x3 uint8 (decoded from our JPEGs),
                                     label (10 names)
omniglot       mur_omniglot          train 4,840; image 105x105x1 uint8 (ink = 255), label (242 names)
imagenet       mur_tiny_imagenet     train 8,000 (the 160 meta-training classes), test 2,000 (the 40
                                     held-out classes); image 64x64x3 uint8, label = wnids.txt index
                                     (200 names "wnid: name"), index = row of val_annotations.txt
alphabet       mur_alphabet          train 62 x #fonts; image 32x32x1 uint8, label (62 characters),
                                     font (index into the metadata's ``font_names``)
two_moons      mur_two_moons         train 2,000, test 1,000; point [2] float32, label (2)
=============  ====================  ===================================================================

The prefix ``mur_`` (meta-unsup-rules) keeps them apart from TFDS's own ``mnist``, ``cifar10``,
``imdb_reviews``: those checksum the original downloads, which our raw files are not (MNIST is
re-gzipped, CIFAR-10 re-encoded as JPEG), and they need TensorFlow and a network.

Each builder verifies the raw files against ``tasks/manifest.json`` (``tasks.data_dir``; a missing or
corrupt file is a :class:`tasks.DataError`) before it generates, and generates from the project's own
parsers (``tasks.datasets.numpy_arrays``, through the NumPy cache), so values, labels and order equal
``tasks.load_raw``'s by construction (examples are written in parser order: ``disable_shuffling``).
Images are uint8 arrays (zlib-compressed, lossless), files ``array_record``; TensorFlow is never imported.

Prepared data sets live in ``<cache>/tfds`` (``$META_UNSUP_CACHE_DIR``, default ``~/.cache/meta_unsup``);
the metadata records ``source_key`` (raw files' sha256, preprocessing version, builder version), and a
stale copy is rebuilt. Prepare from the shell with ``python -m scripts.data prepare_tfds`` (exit status
2 with the DataError's message on a missing or corrupt raw file). Read in any code, without importing
this module:

    import os, tensorflow_datasets as tfds
    data_dir = os.path.expanduser("~/.cache/meta_unsup/tfds")  # tfds does not expand "~"
    train = tfds.data_source("mur_mnist", split="train", data_dir=data_dir)
    train[0]  # {"image": uint8 [28, 28, 1], "label": 5}

Length (~490 lines): one small builder per data set of the table above, each a subclass of one
base that does the verification, caching and array_record writing; they stay together so the
table, the names and the builder versions are read and bumped in one place.

The project's loaders read through TFDS when ``$META_UNSUP_DATA_BACKEND=tfds`` (``load_via_tfds``
here; same arrays, slower than the default NumPy cache: docs/data.md).
"""

from __future__ import annotations

import fcntl
import json
import pathlib
import shutil
import time

import numpy as np
import tensorflow_datasets as tfds

from meta_unsup_rules.tasks import alphabet as alphabet_lib
from meta_unsup_rules.tasks import data_dir as dd
from meta_unsup_rules.tasks import datasets as ds_lib

BUILDER_VERSION = "1.0.0"
TFDS_SUBDIR = "tfds"
TFDS_NAMES = {
  "mnist": "mur_mnist",
  "fashion_mnist": "mur_fashion_mnist",
  "imdb": "mur_imdb",
  "cifar10": "mur_cifar10",
  "omniglot": "mur_omniglot",
  "imagenet": "mur_tiny_imagenet",
  "alphabet": "mur_alphabet",
  "two_moons": "mur_two_moons",
}
_READ_CHUNK = 4096


def default_tfds_dir(cache_dir=None) -> pathlib.Path:
  """``<cache>/tfds``: where ``prepare`` writes (``resolve_cache_dir``: argument > env > default)."""
  return dd.resolve_cache_dir(cache_dir) / TFDS_SUBDIR


def source_key(name: str, data_dir=None, cache_dir=None, max_examples_per_split=None) -> str:
  """What a prepared copy depends on; verifies the raw files (DataError when missing or corrupt)."""
  identity = ds_lib.cache_identity(name, data_dir, cache_dir)
  return dd.cache_key("tfds", BUILDER_VERSION, identity, max_examples_per_split)


def _hwc(image: np.ndarray) -> np.ndarray:
  """[H, W] grey -> [H, W, 1] (TFDS's image layout); RGB unchanged."""
  return image[..., None] if image.ndim == 2 else image


# ------------------------------------------------------------------------------ builders


class _ProjectBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Generates one project data set from ``tasks.datasets.numpy_arrays`` (raw files verified first).

  Extra keyword arguments: ``raw_data_dir`` (the project's ``--data_dir``), ``cache_dir`` (its NumPy
  cache) and ``source_key`` (recorded in the metadata; computed when not given).
  """

  VERSION = tfds.core.Version(BUILDER_VERSION)
  RELEASE_NOTES = {BUILDER_VERSION: "First version, generated from the project's raw parsers."}
  PROJECT_NAME = ""
  SPLITS: tuple[str, ...] = ()
  DESCRIPTION = ""

  def __init__(self, *, raw_data_dir=None, cache_dir=None, source_key=None, **kwargs):  # pylint: disable=redefined-outer-name
    self._raw_data_dir, self._cache_dir, self._source_key = raw_data_dir, cache_dir, source_key
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  def _features(self):
    raise NotImplementedError

  def _supervised_keys(self):
    return ("image", "label")

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        f"{self.DESCRIPTION} Project data set {self.PROJECT_NAME!r} of meta-unsup-rules "
        "(tasks/datasets.py), generated from the raw files listed in tasks/manifest.json."
      ),
      features=self._features(),
      supervised_keys=self._supervised_keys(),
      disable_shuffling=True,  # parser order
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    key = self._source_key or source_key(self.PROJECT_NAME, self._raw_data_dir, self._cache_dir)
    arrays = ds_lib.numpy_arrays(self.PROJECT_NAME, self._raw_data_dir, self._cache_dir)
    self.info.metadata["source_key"] = key
    self.info.metadata["project_name"] = self.PROJECT_NAME
    self._add_metadata(arrays)
    return {split: self._generate_examples(arrays, split) for split in self.SPLITS}

  def _add_metadata(self, arrays):
    del arrays

  def _generate_examples(self, arrays, split):
    for i, example in enumerate(self._examples(arrays, split)):
      yield i, example

  def _examples(self, arrays, split):
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    for i in range(len(y)):
      yield {"image": _hwc(x[i]), "label": int(y[i])}


def _image(shape):
  # uint8 arrays, zlib-compressed: lossless, and read 3-4x faster than tfds.features.Image's PNG
  # (measured on MNIST: 5.0 s against 19 s for 60k images); Image would also need TensorFlow to
  # encode arrays.
  return tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB)


class MurMnist(_ProjectBuilder):
  """MNIST (tasks.datasets 'mnist')."""

  PROJECT_NAME, SPLITS, DESCRIPTION = "mnist", ("train", "test"), "MNIST, 28x28 grey."

  def _features(self):
    return tfds.features.FeaturesDict(
      {"image": _image((28, 28, 1)), "label": tfds.features.ClassLabel(num_classes=10)}
    )


class MurFashionMnist(_ProjectBuilder):
  """Fashion-MNIST (tasks.datasets 'fashion_mnist')."""

  PROJECT_NAME, SPLITS, DESCRIPTION = "fashion_mnist", ("train", "test"), "Fashion-MNIST, 28x28 grey."

  def _features(self):
    return tfds.features.FeaturesDict(
      {
        "image": _image((28, 28, 1)),
        "label": tfds.features.ClassLabel(names=list(ds_lib.FASHION_MNIST_CLASSES)),
      }
    )


class MurCifar10(_ProjectBuilder):
  """CIFAR-10 decoded from the project's JPEG zip (tasks.datasets 'cifar10')."""

  PROJECT_NAME, SPLITS = "cifar10", ("train", "test")
  DESCRIPTION = "CIFAR-10 as decoded (Pillow) from the project's JPEG files, 32x32 RGB."

  def _features(self):
    return tfds.features.FeaturesDict(
      {"image": _image((32, 32, 3)), "label": tfds.features.ClassLabel(names=list(ds_lib.CIFAR10_CLASSES))}
    )


class MurImdb(_ProjectBuilder):
  """IMDB bag of words (tasks.datasets 'imdb'); the vocabulary is in the metadata."""

  PROJECT_NAME, SPLITS = "imdb", ("train", "test")
  DESCRIPTION = "IMDB reviews as binary presence features over the 1,000 most frequent train tokens."

  def _features(self):
    return tfds.features.FeaturesDict(
      {
        "features": tfds.features.Tensor(shape=(ds_lib.IMDB_VOCAB_SIZE,), dtype=np.uint8),
        "label": tfds.features.ClassLabel(names=list(ds_lib.IMDB_CLASSES)),
        "rating": tfds.features.Tensor(shape=(), dtype=np.int8),
      }
    )

  def _supervised_keys(self):
    return ("features", "label")

  def _add_metadata(self, arrays):
    self.info.metadata["vocab"] = arrays["vocab"].tolist()

  def _examples(self, arrays, split):
    x, y, r = arrays[f"x_{split}"], arrays[f"y_{split}"], arrays[f"rating_{split}"]
    for i in range(len(y)):
      yield {"features": x[i], "label": int(y[i]), "rating": r[i]}


class MurOmniglot(_ProjectBuilder):
  """Omniglot background_small1 + small2 (tasks.datasets 'omniglot'), ink = 255."""

  PROJECT_NAME, SPLITS = "omniglot", ("train",)
  DESCRIPTION = "Omniglot images_background_small1 + small2, 105x105 grey, ink 255 on 0."
  NUM_CLASSES = 242

  def _features(self):
    return tfds.features.FeaturesDict(
      {"image": _image((105, 105, 1)), "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES)}
    )

  def _add_metadata(self, arrays):
    self.info.features["label"].names = arrays["classes"].tolist()

  def _examples(self, arrays, split):
    x, y = arrays["x_train"], arrays["y_train"]
    for i in range(len(y)):
      yield {"image": _hwc(x[i]), "label": int(y[i])}


class MurTinyImagenet(_ProjectBuilder):
  """Tiny-ImageNet validation images (tasks.datasets 'imagenet'), split by the project's class split."""

  PROJECT_NAME, SPLITS = "imagenet", ("train", "test")
  DESCRIPTION = (
    "Tiny-ImageNet validation images, 64x64 RGB; train = the 160 meta-training classes, test = the 40 "
    "held-out classes (i % 5 == 4); label = index in wnids.txt."
  )

  def _features(self):
    return tfds.features.FeaturesDict(
      {
        "image": _image((64, 64, 3)),
        "label": tfds.features.ClassLabel(num_classes=200),
        "index": tfds.features.Tensor(shape=(), dtype=np.int32),
      }
    )

  def _add_metadata(self, arrays):
    self.info.features["label"].names = arrays["classes"].tolist()

  def _examples(self, arrays, split):
    keep = np.isin(arrays["y_all"], ds_lib.imagenet_split_classes(split))
    x, y = arrays["x_all"], arrays["y_all"]
    for i in np.flatnonzero(keep):
      yield {"image": _hwc(x[i]), "label": int(y[i]), "index": np.int32(i)}


class MurAlphabet(_ProjectBuilder):
  """The rendered-font Alphabet (tasks.alphabet); font paths in the metadata."""

  PROJECT_NAME, SPLITS = "alphabet", ("train",)
  DESCRIPTION = "62 characters (0-9 A-Z a-z) rendered from the installed fonts, 32x32 grey."

  def _features(self):
    return tfds.features.FeaturesDict(
      {
        "image": _image((32, 32, 1)),
        "label": tfds.features.ClassLabel(names=list(alphabet_lib.CHARACTERS)),
        "font": tfds.features.Tensor(shape=(), dtype=np.int32),
      }
    )

  def _add_metadata(self, arrays):
    self.info.metadata["font_names"] = arrays["font_names"].tolist()
    self.info.metadata["skipped"] = arrays["skipped"].tolist()

  def _examples(self, arrays, split):
    x, y, font = arrays["x"], arrays["y"], arrays["font"]
    for i in range(len(y)):
      yield {"image": _hwc(x[i]), "label": int(y[i]), "font": font[i]}


class MurTwoMoons(_ProjectBuilder):
  """Seeded two-moons (tasks.datasets 'two_moons')."""

  PROJECT_NAME, SPLITS = "two_moons", ("train", "test")
  DESCRIPTION = "Two-moons, seeds 0 (train) and 1 (test), noise 0.1."

  def _features(self):
    return tfds.features.FeaturesDict(
      {
        "point": tfds.features.Tensor(shape=(2,), dtype=np.float32),
        "label": tfds.features.ClassLabel(names=["moon_0", "moon_1"]),
      }
    )

  def _supervised_keys(self):
    return ("point", "label")

  def _examples(self, arrays, split):
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    for i in range(len(y)):
      yield {"point": x[i], "label": int(y[i])}


BUILDERS = {
  b.PROJECT_NAME: b
  for b in (MurMnist, MurFashionMnist, MurImdb, MurCifar10, MurOmniglot, MurTinyImagenet, MurAlphabet)
}
BUILDERS["two_moons"] = MurTwoMoons
assert set(BUILDERS) == set(ds_lib.DATASETS) and all(BUILDERS[n].name == TFDS_NAMES[n] for n in BUILDERS)


# ------------------------------------------------------------------------- prepare / read


def _stored_key(version_dir: pathlib.Path):
  try:
    return json.loads((version_dir / "metadata.json").read_text()).get("source_key")
  except (OSError, ValueError):
    return None


def prepare(
  name: str, data_dir=None, cache_dir=None, tfds_dir=None, max_examples_per_split: int | None = None
) -> pathlib.Path:
  """Prepares project data set ``name`` as ``TFDS_NAMES[name]`` under ``tfds_dir`` (default
  ``<cache>/tfds``) unless an up-to-date copy is there; returns ``tfds_dir``.

  Raw files are verified first (DataError when missing or corrupt; no data set is written then).
  Concurrent calls wait for each other (a lock file in ``tfds_dir``).
  ``max_examples_per_split``: keep only each split's first examples (tests).
  """
  if name not in BUILDERS:
    raise ValueError(f"unknown data set {name!r}; known: {tuple(BUILDERS)}")
  key = source_key(name, data_dir, cache_dir, max_examples_per_split)
  tfds_dir = pathlib.Path(tfds_dir).expanduser().resolve() if tfds_dir else default_tfds_dir(cache_dir)
  version_dir = tfds_dir / TFDS_NAMES[name] / BUILDER_VERSION
  if _stored_key(version_dir) == key:
    return tfds_dir
  tfds_dir.mkdir(parents=True, exist_ok=True)
  # One writer at a time (Ray workers that all read through TFDS start together).
  with open(tfds_dir / f".{TFDS_NAMES[name]}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if _stored_key(version_dir) == key:
      return tfds_dir  # prepared by another process meanwhile
    if version_dir.exists():
      shutil.rmtree(version_dir)  # stale: other raw files, parser or builder version
    builder = BUILDERS[name](
      data_dir=str(tfds_dir), raw_data_dir=data_dir, cache_dir=cache_dir, source_key=key
    )
    config = tfds.download.DownloadConfig(max_examples_per_split=max_examples_per_split)
    builder.download_and_prepare(download_config=config)
  return tfds_dir


def data_source(name: str, split: str | None = None, data_dir=None, cache_dir=None, tfds_dir=None):
  """``tfds.data_source`` of a project data set (prepared first if needed): random access, picklable."""
  tfds_dir = prepare(name, data_dir, cache_dir, tfds_dir)
  return tfds.data_source(TFDS_NAMES[name], split=split, data_dir=str(tfds_dir))


def _get_chunk(source, indices: list[int]) -> list:
  """``source.__getitems__`` (5x faster than one ``source[i]`` at a time), else one at a time:
  the data source of ``tfds.testing.mock_data`` (4.9.10) cannot take ``__getitems__``."""
  try:
    return source.__getitems__(indices)
  except TypeError as e:
    if "record_keys" not in str(e):
      raise
    return [source[i] for i in indices]


def _read_split(source, keys) -> dict[str, np.ndarray]:
  cols = {k: [] for k in keys}
  n = len(source)
  for start in range(0, n, _READ_CHUNK):
    for ex in _get_chunk(source, list(range(start, min(n, start + _READ_CHUNK)))):
      for k in keys:
        cols[k].append(ex[k])
  return {k: np.asarray(v) for k, v in cols.items()}


def _grey(image: np.ndarray) -> np.ndarray:
  return image[..., 0] if image.ndim == 4 and image.shape[-1] == 1 else image


def read_arrays(name: str, tfds_dir) -> dict[str, np.ndarray]:
  """All arrays of a prepared data set, read through ``tfds.data_source``, in the layout of
  ``tasks.datasets.numpy_arrays`` (so ``tasks.datasets.split_view`` applies)."""
  builder = tfds.builder(TFDS_NAMES[name], data_dir=str(tfds_dir))
  sources = {
    split: tfds.data_source(TFDS_NAMES[name], split=split, data_dir=str(tfds_dir))
    for split in BUILDERS[name].SPLITS
  }
  meta = builder.info.metadata or {}
  labels = builder.info.features["label"].names
  if name in ("mnist", "fashion_mnist", "cifar10", "two_moons"):
    key = "point" if name == "two_moons" else "image"
    out = {}
    for split, src in sources.items():
      c = _read_split(src, (key, "label"))
      out[f"x_{split}"] = _grey(c[key]) if key == "image" else c[key].astype(np.float32)
      out[f"y_{split}"] = c["label"].astype(np.int32)
    return out
  if name == "imdb":
    out = {"vocab": np.array(meta.get("vocab", []), dtype=str)}
    for split, src in sources.items():
      c = _read_split(src, ("features", "label", "rating"))
      out[f"x_{split}"] = c["features"].astype(np.uint8)
      out[f"y_{split}"] = c["label"].astype(np.int32)
      out[f"rating_{split}"] = c["rating"].astype(np.int8)
    return out
  if name == "omniglot":
    c = _read_split(sources["train"], ("image", "label"))
    return {"x_train": _grey(c["image"]), "y_train": c["label"].astype(np.int32), "classes": np.array(labels)}
  if name == "imagenet":
    parts = [_read_split(sources[s], ("image", "label", "index")) for s in sorted(sources)]
    order = np.argsort(np.concatenate([p["index"] for p in parts]), kind="stable")
    x = np.concatenate([p["image"] for p in parts])[order]
    y = np.concatenate([p["label"] for p in parts]).astype(np.int32)[order]
    return {"x_all": x, "y_all": y, "classes": np.array(labels)}
  if name == "alphabet":
    c = _read_split(sources["train"], ("image", "label", "font"))
    return {
      "x": _grey(c["image"]),
      "y": c["label"].astype(np.int32),
      "font": c["font"].astype(np.int32),
      "font_names": np.array(meta.get("font_names", []), dtype=str),
      "skipped": np.array(meta.get("skipped", []), dtype=str),
    }
  raise ValueError(f"unknown data set {name!r}; known: {tuple(BUILDERS)}")


def load_arrays(name: str, data_dir=None, cache_dir=None, tfds_dir=None) -> dict[str, np.ndarray]:
  """``read_arrays`` after ``prepare`` (raw files verified; prepared on first use)."""
  return read_arrays(name, prepare(name, data_dir, cache_dir, tfds_dir))


def load_via_tfds(
  name: str, split: str = "train", data_dir=None, cache_dir=None, tfds_dir=None, prepare_first: bool = True
) -> ds_lib.RawDataset:
  """Like ``tasks.load_raw(name, split)``, read through ``tfds.data_source`` (equal arrays).

  prepare_first=False: read ``tfds_dir`` as it is (no raw files needed).
  """
  if prepare_first:
    arrays = load_arrays(name, data_dir, cache_dir, tfds_dir)
  else:
    arrays = read_arrays(name, pathlib.Path(tfds_dir) if tfds_dir else default_tfds_dir(cache_dir))
  return ds_lib.split_view(name, split, arrays)


# ------------------------------------------------------------------------- preparing


def prepare_many(names, data_dir=None, cache_dir=None, tfds_dir=None) -> tuple[str, dict[str, float]]:
  """Prepares the named data sets (all if empty): (the TFDS data_dir, seconds per TFDS name).

  Raises DataError for a missing or corrupt raw file (`scripts.data prepare_tfds` exits 2 on it)."""
  tfds.display_progress_bar(False)
  unknown = [n for n in names if n not in BUILDERS]
  if unknown:
    raise ValueError(f"unknown data sets {unknown}: expected some of {list(BUILDERS)}")
  seconds, out = {}, None
  for name in names or list(BUILDERS):
    t0 = time.perf_counter()
    out = prepare(name, data_dir, cache_dir, tfds_dir)
    seconds[TFDS_NAMES[name]] = round(time.perf_counter() - t0, 2)
  return str(out), seconds
