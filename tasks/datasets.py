"""Data sets loaded from the raw files of the data directory (see ``docs/data_sources.md``).

``load_dataset(name, split)`` returns a :class:`Dataset` with float32 inputs in [0, 1]
(images ``[N, H, W]`` grey or ``[N, H, W, 3]`` RGB; IMDB ``[N, 1000]``; two-moons ``[N, 2]``
coordinates) and int32 labels. Decoded arrays are cached as uint8 (``tasks.data_dir``)
and converted on access; ``load_raw`` gives the uint8 arrays without the conversion.

Length (~540 lines): one short parser per raw format (IDX, IMDB tar, CIFAR JPEG zip,
Omniglot, Tiny-ImageNet, two-moons) behind one loader; splitting them would spread the
one table below over seven files.

=============  ======================  ==========================================================
name           splits                  notes
=============  ======================  ==========================================================
mnist          train 60k, test 10k     IDX .gz, 28x28 grey, 10 classes
fashion_mnist  train 60k, test 10k     IDX .gz, 28x28 grey, 10 classes
imdb           train 25k, test 25k     bag of words, 1,000 binary features, labels 1 = positive
cifar10        train 50k, test 10k     JPEG zip, 32x32 RGB, canonical class order
omniglot       train 4,840             images_background_small1 + small2 (union, Greek and Latin
                                       are in both and identical): 8 alphabets, 242 characters x
                                       20 drawers; 105x105, ink = 1 on background 0 (inverted from
                                       the PNGs); class = "Alphabet/characterNN" in sorted order;
               val 40 x 20             "val" = the 40 meta-validation characters (i % 6 == 5),
               train_minus_val 202 x 20  "train_minus_val" = the other 202
imagenet       train 8,000 (160 cls)   Tiny-ImageNet *validation* images (the only part we have),
               test 2,000 (40 cls)     64x64 RGB (grey JPEGs replicated to 3 channels). "train" =
               all 10,000 (200 cls)    meta-training classes, "test" (alias "heldout") = held-out
               val 2,000 (40 cls)      "ImageNet test" classes, "all" = every class; "val" = the
               train_minus_val 6,000   meta-validation classes (a subset of "train"),
                 (120 cls)             "train_minus_val" = "train" without them
alphabet       train 62 x #fonts       rendered fonts, 32x32 grey, 62 classes (tasks/alphabet.py);
               val 10 x #fonts         "val" = the 10 meta-validation characters (i % 6 == 5),
               train_minus_val 52 x    "train_minus_val" = the other 52
two_moons      train 2,000, test 1,000 synthetic, seeded; 2 features; 2 classes balanced
=============  ======================  ==========================================================

Tiny-ImageNet class split (fixed): classes are indexed in ``wnids.txt`` order (the label
convention of docs/data_sources.md); class ``i`` is held out iff ``i % 5 == 4`` (40 classes: 4, 9, ...,
199), the other 160 are meta-training classes. Of those, class ``i`` with ``i % 5 == 3``
(40 classes: 3, 8, ..., 198) is a meta-validation class: with ``task.validation_holdout``
meta-training draws from "train_minus_val" only and θ is selected on "val"
(``imagenet_val``, tasks/eval_tasks.py). In a split, labels are re-indexed
0..C-1 in increasing original index; ``class_names`` hold "wnid: first words.txt name".

IMDB: text lower-cased, ``<br />`` tags (any ``<br>``, ``<br/>``, ``<br />``) replaced by a
space, tokens = ``[a-z0-9]+(?:'[a-z0-9]+)*`` (words with inner apostrophes kept, e.g.
"don't"; all other characters separate tokens; no stemming, no stop-word removal).
Vocabulary = the 1,000 most frequent tokens (total count) of the *train* split, ties
broken alphabetically, in that order. Feature j = 1 if token j occurs in the review, else
0 (binary presence, as Keras' multi-hot; counts are not used).

Two-moons: per class n/2 points, t ~ U[0, pi]; class 0 = (cos t, sin t), class 1 =
(1 - cos t, 1/2 - sin t), plus N(0, 0.1^2) noise per coordinate; seeds 0 (train) and 1
(test); examples interleaved by class.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gzip
import io
import json
import lzma
import os
import re
import threading
import zipfile
from typing import Mapping, Sequence

import numpy as np

from meta_unsup_rules.tasks import alphabet as alphabet_lib
from meta_unsup_rules.tasks import data_dir as dd

# A file that passed its checksum yet does not decode: the layout or format is not the expected one.
_FORMATS = f"the expected formats and layout: {dd.sources_doc()}"

DATASETS = ("mnist", "fashion_mnist", "imdb", "cifar10", "omniglot", "imagenet", "alphabet", "two_moons")
SPLITS = {
  "mnist": ("train", "test"),
  "fashion_mnist": ("train", "test"),
  "imdb": ("train", "test"),
  "cifar10": ("train", "test"),
  "omniglot": ("train", "val", "train_minus_val"),
  "imagenet": ("train", "test", "all", "val", "train_minus_val"),
  "alphabet": ("train", "val", "train_minus_val"),
  "two_moons": ("train", "test"),
}
SPLIT_ALIASES = {("imagenet", "heldout"): "test", ("imagenet", "meta_train"): "train"}
PREPROCESS_VERSION = {"mnist": 1, "fashion_mnist": 1, "imdb": 1, "cifar10": 1, "omniglot": 1, "imagenet": 1}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = (
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
)
IMDB_VOCAB_SIZE = 1000
IMDB_CLASSES = ("negative", "positive")
IMAGENET_HELDOUT_MOD = 5  # class i held out iff i % 5 == 4
IMAGENET_VALIDATION_REMAINDER = 3  # meta-validation class iff i % 5 == 3 (a meta-training class)
ALPHABET_VALIDATION_MOD, ALPHABET_VALIDATION_REMAINDER = 6, 5  # i % 6 == 5: 5 B H N T Z f l r x
OMNIGLOT_VALIDATION_MOD, OMNIGLOT_VALIDATION_REMAINDER = 6, 5  # character i (sorted) % 6 == 5: 40 of 242
TWO_MOONS_SIZES = {"train": 2000, "test": 1000}
TWO_MOONS_SEEDS = {"train": 0, "test": 1}
TWO_MOONS_NOISE = 0.1
DATA_BACKEND_ENV = "META_UNSUP_DATA_BACKEND"
DATA_BACKENDS = ("numpy", "tfds")

_IDX_FILES = {
  "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_RAW_FILES = {
  "mnist": [f"mnist/{f}" for pair in _IDX_FILES.values() for f in pair],
  "fashion_mnist": [f"fashion_mnist/{f}" for pair in _IDX_FILES.values() for f in pair],
  "imdb": ["imdb/imdb_reviews.jsonl.xz"],
  "cifar10": ["cifar10/cifar10_jpeg.zip"],
  "omniglot": ["omniglot/images_background_small1.zip", "omniglot/images_background_small2.zip"],
  "imagenet": ["tiny_imagenet/tiny_imagenet_200_val.zip"],
}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """One split of a data set. x: float32 in [0, 1] (two-moons: raw coordinates); y: int32."""

  name: str
  x: np.ndarray
  y: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]
  split: str = "train"

  def __len__(self) -> int:
    return int(self.x.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class RawDataset:
  """Like Dataset, but x as stored (uint8 images / IMDB features; float32 two-moons)."""

  name: str
  x: np.ndarray
  y: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]
  split: str = "train"
  scale: float = 255.0  # x / scale is in [0, 1] (1.0 for IMDB and two-moons)
  extra: dict = dataclasses.field(default_factory=dict)

  def as_float(self) -> Dataset:
    x = self.x.astype(np.float32)
    if self.scale != 1.0:
      x *= np.float32(1.0 / self.scale)
    return Dataset(self.name, x, self.y, self.num_classes, self.class_names, self.split)


# ---------------------------------------------------------------------- raw readers


def _verified_paths(name: str, data_dir, cache_dir) -> dict[str, str]:
  return {rel: str(dd.raw_file(data_dir, rel, cache_dir)) for rel in _RAW_FILES[name]}


def _key_parts(name: str, extra=()) -> tuple:
  m = dd.manifest()
  return (PREPROCESS_VERSION[name], [m[r].sha256 for r in _RAW_FILES[name]], list(extra))


def _read_idx(path: str, rel: str) -> np.ndarray:
  try:
    with gzip.open(path, "rb") as f:
      b = f.read()
    nd = b[3]
    shape = tuple(int.from_bytes(b[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd))
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(shape).copy()
  except (OSError, ValueError, EOFError) as e:
    raise dd.DataError(f"{rel}: cannot decode IDX file {path} ({e}); {_FORMATS}") from None


def _build_idx(name: str, paths: dict[str, str]) -> dict[str, np.ndarray]:
  out = {}
  for split, (img, lab) in _IDX_FILES.items():
    out[f"x_{split}"] = _read_idx(paths[f"{name}/{img}"], img)
    out[f"y_{split}"] = _read_idx(paths[f"{name}/{lab}"], lab).astype(np.int32)
  return out


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
  """IMDB tokeniser (see module docstring)."""
  return _TOKEN.findall(_BR.sub(" ", text.lower()))


def _build_imdb(paths: dict[str, str]) -> dict[str, np.ndarray]:
  import collections  # pylint: disable=g-import-not-at-top

  path = paths["imdb/imdb_reviews.jsonl.xz"]
  try:
    with lzma.open(path, "rt", encoding="utf-8", newline="\n") as f:
      records = [json.loads(line) for line in f.read().split("\n") if line]
  except (OSError, ValueError, EOFError, lzma.LZMAError) as e:
    raise dd.DataError(f"imdb/imdb_reviews.jsonl.xz: cannot decode {path} ({e}); {_FORMATS}") from None
  tokens = [tokenize(r["text"]) for r in records]
  counts = collections.Counter()
  for r, t in zip(records, tokens):
    if r["split"] == "train":
      counts.update(t)
  vocab = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:IMDB_VOCAB_SIZE]]
  index = {w: i for i, w in enumerate(vocab)}
  out = {"vocab": np.array(vocab, dtype=str)}
  for split in ("train", "test"):
    rows = [i for i, r in enumerate(records) if r["split"] == split]
    x = np.zeros((len(rows), len(vocab)), np.uint8)
    for k, i in enumerate(rows):
      cols = [index[w] for w in set(tokens[i]) if w in index]
      x[k, cols] = 1
    out[f"x_{split}"] = x
    out[f"y_{split}"] = np.array([records[i]["label"] for i in rows], np.int32)
    out[f"rating_{split}"] = np.array([records[i]["rating"] for i in rows], np.int8)
  return out


def _decode_images(blobs: Sequence[bytes], mode: str, what: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top

  def dec(b):
    with Image.open(io.BytesIO(b)) as im:
      return np.asarray(im.convert(mode))

  try:
    workers = min(4, os.cpu_count() or 1)
    if workers > 1 and len(blobs) > 1000:
      with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        arrs = list(ex.map(dec, blobs, chunksize=256))
    else:
      arrs = [dec(b) for b in blobs]
  except Exception as e:  # pylint: disable=broad-except
    raise dd.DataError(f"{what}: cannot decode an image ({type(e).__name__}: {e}); {_FORMATS}") from None
  return np.stack(arrs)


def _open_zip(path: str, rel: str) -> zipfile.ZipFile:
  try:
    return zipfile.ZipFile(path)
  except (OSError, zipfile.BadZipFile) as e:
    raise dd.DataError(f"{rel}: cannot open zip {path} ({e}); {_FORMATS}") from None


def _build_cifar10(paths: dict[str, str]) -> dict[str, np.ndarray]:
  rel = "cifar10/cifar10_jpeg.zip"
  with _open_zip(paths[rel], rel) as z:
    out = {}
    for split in ("train", "test"):
      names = sorted(n for n in z.namelist() if n.startswith(split + "/") and n.endswith(".jpg"))
      out[f"x_{split}"] = _decode_images([z.read(n) for n in names], "RGB", rel)
      out[f"y_{split}"] = np.array([CIFAR10_CLASSES.index(n.split("/")[1]) for n in names], np.int32)
  return out


def _build_omniglot(paths: dict[str, str]) -> dict[str, np.ndarray]:
  members = {}
  for rel in _RAW_FILES["omniglot"]:
    with _open_zip(paths[rel], rel) as z:
      for n in z.namelist():
        if n.endswith(".png"):
          members.setdefault(n.split("/", 1)[1], z.read(n))  # identical duplicates: keep one
  names = sorted(members)
  classes = sorted({"/".join(n.split("/")[:2]) for n in names})
  x = _decode_images([members[n] for n in names], "L", "omniglot")
  x = (255 - x).astype(np.uint8)  # ink (black in the PNGs) -> 255
  y = np.array([classes.index("/".join(n.split("/")[:2])) for n in names], np.int32)
  return {"x_train": x, "y_train": y, "classes": np.array(classes, dtype=str)}


def _build_imagenet(paths: dict[str, str]) -> dict[str, np.ndarray]:
  rel = "tiny_imagenet/tiny_imagenet_200_val.zip"
  root = "tiny-imagenet-200/"
  with _open_zip(paths[rel], rel) as z:
    wnids = z.read(root + "wnids.txt").decode().split()
    words = dict(
      line.split("\t", 1) for line in z.read(root + "words.txt").decode().splitlines() if "\t" in line
    )
    ann = [
      line.split("\t")
      for line in z.read(root + "val/val_annotations.txt").decode().splitlines()
      if line.strip()
    ]
    files = [a[0] for a in ann]
    x = _decode_images([z.read(root + "val/images/" + f) for f in files], "RGB", rel)
  y = np.array([wnids.index(a[1]) for a in ann], np.int32)
  names = [f"{w}: {words.get(w, '').split(',')[0].strip()}" for w in wnids]
  return {"x_all": x, "y_all": y, "classes": np.array(names, dtype=str)}


def imagenet_heldout_classes() -> np.ndarray:
  """Original (wnids.txt) indices of the 40 held-out Tiny-ImageNet classes."""
  return np.arange(IMAGENET_HELDOUT_MOD - 1, 200, IMAGENET_HELDOUT_MOD)


def imagenet_meta_train_classes() -> np.ndarray:
  """Original (wnids.txt) indices of the 160 meta-training Tiny-ImageNet classes."""
  return np.setdiff1d(np.arange(200), imagenet_heldout_classes())


def imagenet_validation_classes() -> np.ndarray:
  """Original indices of the 40 meta-validation classes (i % 5 == 3; of the 160 meta-training ones)."""
  return np.arange(IMAGENET_VALIDATION_REMAINDER, 200, IMAGENET_HELDOUT_MOD)


def imagenet_split_classes(split: str) -> np.ndarray:
  """Original (wnids.txt) indices of an imagenet split's classes, increasing."""
  split = _canonical_split("imagenet", split)
  if split == "all":
    return np.arange(200)
  if split == "test":
    return imagenet_heldout_classes()
  if split == "val":
    return imagenet_validation_classes()
  if split == "train_minus_val":
    return np.setdiff1d(imagenet_meta_train_classes(), imagenet_validation_classes())
  return imagenet_meta_train_classes()


def alphabet_split_classes(split: str) -> np.ndarray:
  """Character indices (alphabet.CHARACTERS) of an alphabet split: "train" all 62, "val" the
  10 meta-validation characters (i % 6 == 5: 5 B H N T Z f l r x), "train_minus_val" the rest."""
  split = _canonical_split("alphabet", split)
  every = np.arange(len(alphabet_lib.CHARACTERS))
  val = every[every % ALPHABET_VALIDATION_MOD == ALPHABET_VALIDATION_REMAINDER]
  if split == "val":
    return val
  if split == "train_minus_val":
    return np.setdiff1d(every, val)
  return every


def omniglot_split_classes(split: str, num_classes: int) -> np.ndarray:
  """Character indices (sorted "Alphabet/characterNN" order) of an omniglot split: "train" all,
  "val" the meta-validation characters (i % 6 == 5, spread over every alphabet), "train_minus_val"
  the rest."""
  split = _canonical_split("omniglot", split)
  every = np.arange(num_classes)
  val = every[every % OMNIGLOT_VALIDATION_MOD == OMNIGLOT_VALIDATION_REMAINDER]
  if split == "val":
    return val
  if split == "train_minus_val":
    return np.setdiff1d(every, val)
  return every


def two_moons(n: int, seed: int, noise: float = TWO_MOONS_NOISE) -> tuple[np.ndarray, np.ndarray]:
  """Seeded two-moons: float32 [n, 2], int32 [n] (see module docstring)."""
  rng = np.random.default_rng(seed)
  half = n // 2
  t = rng.uniform(0.0, np.pi, size=(2, n - half))
  outer = np.stack([np.cos(t[0]), np.sin(t[0])], 1)
  inner = np.stack([1.0 - np.cos(t[1]), 0.5 - np.sin(t[1])], 1)
  x = np.empty((n, 2))
  y = np.empty(n, np.int32)
  x[0::2], y[0::2] = outer[: len(x[0::2])], 0
  x[1::2], y[1::2] = inner[: len(x[1::2])], 1
  x += noise * rng.standard_normal(x.shape)
  return x.astype(np.float32), y


# -------------------------------------------------------------------------- loading

_memo: dict = {}
_memo_lock = threading.Lock()


def clear_memos() -> None:
  """Forgets in-process loads and checksum results (cold-load timing, tests)."""
  with _memo_lock:
    _memo.clear()
  dd.clear_memos()


def cache_identity(name: str, data_dir=None, cache_dir=None) -> tuple:
  """What a data set's cached arrays depend on (raw files are verified here)."""
  if name in _RAW_FILES:
    _verified_paths(name, data_dir, cache_dir)
    extra = (IMDB_VOCAB_SIZE,) if name == "imdb" else ()
    return (name,) + _key_parts(name, extra)
  if name == "alphabet":
    return (name,) + alphabet_lib.cache_key_parts()
  if name == "two_moons":
    return (name, TWO_MOONS_SIZES, TWO_MOONS_SEEDS, TWO_MOONS_NOISE)
  raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")


def data_backend() -> str:
  """Where the loaders read decoded arrays: ``$META_UNSUP_DATA_BACKEND``, "numpy" (default) or "tfds"."""
  value = os.environ.get(DATA_BACKEND_ENV) or "numpy"
  if value not in DATA_BACKENDS:
    raise ValueError(f"{DATA_BACKEND_ENV}={value!r}; expected one of {DATA_BACKENDS}")
  return value


def numpy_arrays(name: str, data_dir=None, cache_dir=None) -> dict[str, np.ndarray]:
  """All arrays of a data set from the raw parsers, through the NumPy cache (raw files verified)."""
  if name in _RAW_FILES:
    paths = _verified_paths(name, data_dir, cache_dir)
    builder = {
      "mnist": lambda p: _build_idx("mnist", p),
      "fashion_mnist": lambda p: _build_idx("fashion_mnist", p),
      "imdb": _build_imdb,
      "cifar10": _build_cifar10,
      "omniglot": _build_omniglot,
      "imagenet": _build_imagenet,
    }[name]
    return dd.cached_arrays(
      name, cache_identity(name, data_dir, cache_dir)[1:], lambda: builder(paths), cache_dir
    )
  if name == "alphabet":
    return alphabet_lib.load_arrays(cache_dir)
  if name == "two_moons":
    arrays = {}
    for split, n in TWO_MOONS_SIZES.items():
      arrays[f"x_{split}"], arrays[f"y_{split}"] = two_moons(n, TWO_MOONS_SEEDS[split])
    return arrays
  raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")


def _arrays(name: str, data_dir, cache_dir, memoize: bool = True) -> dict[str, np.ndarray]:
  """All cached arrays of a data set (memoised per process unless memoize=False).

  Read from the NumPy cache, or through TensorFlow Datasets when ``$META_UNSUP_DATA_BACKEND`` is
  "tfds" (tasks/tfds_builders.py; same arrays, slower).
  """
  if name not in DATASETS:
    raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")
  backend = data_backend()
  key = (
    name,
    str(dd.resolve_data_dir(data_dir)) if name in _RAW_FILES else None,
    str(dd.resolve_cache_dir(cache_dir)),
    backend,
  )
  with _memo_lock:
    if key in _memo:
      return _memo[key]
  if backend == "tfds":
    from meta_unsup_rules.tasks import tfds_builders  # pylint: disable=g-import-not-at-top

    arrays = tfds_builders.load_arrays(name, data_dir, cache_dir)
  else:
    arrays = numpy_arrays(name, data_dir, cache_dir)
  for v in arrays.values():
    v.setflags(write=False)
  if memoize:
    with _memo_lock:
      _memo[key] = arrays
  return arrays


def _canonical_split(name: str, split: str) -> str:
  split = SPLIT_ALIASES.get((name, split), split)
  if name not in SPLITS:
    raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")
  if split not in SPLITS[name]:
    raise ValueError(f"data set {name!r} has splits {SPLITS[name]}, not {split!r}")
  return split


def load_raw(
  name: str, split: str = "train", data_dir=None, cache_dir=None, memoize: bool = True
) -> RawDataset:
  """A split as stored (uint8 images / features). Read-only arrays shared within a process.

  memoize=False: do not keep the decoded arrays in the per-process memo (for one-off
  preprocessing whose result is kept instead).
  """
  split = _canonical_split(name, split)  # bad names fail before any load
  return split_view(name, split, _arrays(name, data_dir, cache_dir, memoize))


def split_view(name: str, split: str, a: Mapping[str, np.ndarray]) -> RawDataset:
  """A split of a data set from all its arrays (as ``numpy_arrays`` returns them)."""
  split = _canonical_split(name, split)
  if name in ("mnist", "fashion_mnist", "cifar10"):
    names = {
      "mnist": tuple(str(i) for i in range(10)),
      "fashion_mnist": FASHION_MNIST_CLASSES,
      "cifar10": CIFAR10_CLASSES,
    }[name]
    return RawDataset(name, a[f"x_{split}"], a[f"y_{split}"], 10, names, split)
  if name == "imdb":
    return RawDataset(
      name,
      a[f"x_{split}"],
      a[f"y_{split}"],
      2,
      IMDB_CLASSES,
      split,
      scale=1.0,
      extra={"vocab": tuple(a["vocab"].tolist()), "rating": a[f"rating_{split}"]},
    )
  if name == "omniglot":
    classes = tuple(a["classes"].tolist())
    if split == "train":
      return RawDataset(name, a["x_train"], a["y_train"], len(classes), classes, split)
    keep = omniglot_split_classes(split, len(classes))
    remap = np.full(len(classes), -1, np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    sel = np.flatnonzero(remap[a["y_train"]] >= 0)
    x, y = a["x_train"][sel], remap[a["y_train"][sel]]
    x.setflags(write=False)
    y.setflags(write=False)
    names = tuple(classes[i] for i in keep)
    return RawDataset(name, x, y, len(keep), names, split, extra={"original_class": keep})
  if name == "imagenet":
    all_names = a["classes"].tolist()
    keep = imagenet_split_classes(split)
    remap = np.full(200, -1, np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    if split == "all":
      x, y = a["x_all"], a["y_all"]
    else:
      sel = np.flatnonzero(remap[a["y_all"]] >= 0)
      x, y = a["x_all"][sel], remap[a["y_all"][sel]]
      x.setflags(write=False)
      y.setflags(write=False)
    return RawDataset(
      name, x, y, len(keep), tuple(all_names[i] for i in keep), split, extra={"original_class": keep}
    )
  if name == "alphabet":
    keep = alphabet_split_classes(split)
    x, y, font = a["x"], a["y"], a["font"]
    if split != "train":
      remap = np.full(len(alphabet_lib.CHARACTERS), -1, np.int32)
      remap[keep] = np.arange(len(keep), dtype=np.int32)
      sel = np.flatnonzero(remap[y] >= 0)
      x, y, font = x[sel], remap[y[sel]], font[sel]
      for v in (x, y, font):
        v.setflags(write=False)
    return RawDataset(
      name,
      x,
      y,
      len(keep),
      tuple(alphabet_lib.CHARACTERS[i] for i in keep),
      split,
      extra={"font": font, "font_names": tuple(a["font_names"].tolist()), "original_class": keep},
    )
  if name == "two_moons":
    return RawDataset(name, a[f"x_{split}"], a[f"y_{split}"], 2, ("moon_0", "moon_1"), split, scale=1.0)
  raise ValueError(f"unknown data set {name!r}")


def load_dataset(name: str, split: str = "train", data_dir=None, cache_dir=None) -> Dataset:
  """A split with float32 x in [0, 1] (two-moons: raw coordinates) and int32 y."""
  return load_raw(name, split, data_dir, cache_dir).as_float()


def raw_files(name: str) -> list[str]:
  """Manifest entries (relative paths) a data set is built from; [] for synthetic sets."""
  return list(_RAW_FILES.get(name, []))
