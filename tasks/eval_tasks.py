"""Evaluation (meta-test) tasks: fixed data, few-shot support sets, test-split accuracy.

=================== ===== ==== =================================================================
name                dim   C    data
=================== ===== ==== =================================================================
tiny_mnist          196   10   MNIST 28x28 -> 14x14, half-pixel bilinear (= 2x2 mean), [0, 1]
tiny_fashion_mnist  196   10   Fashion-MNIST, same resize
mnist               784   10   MNIST 28x28, [0, 1]
fashion_mnist       784   10   Fashion-MNIST 28x28, [0, 1]
imdb                1000  2    IMDB binary bag of words over the 1,000 most frequent train words
imagenet_heldout    256   10   held-out Tiny-ImageNet classes (tasks.datasets: i % 5 == 4), the
                               first ``num_classes`` (default 10, at most 40) of them in wnids.txt
                               order; grey (BT.601), area resize 64 -> 16
imagenet_val        256   10   meta-validation Tiny-ImageNet classes (i % 5 == 3), built as
                               imagenet_heldout; not a test task: θ is selected on it, and
                               meta-training leaves its classes out with task.validation_holdout
alphabet_val        256   10   meta-validation Alphabet characters (i % 6 == 5: 5 B H N T Z f l r
                               x), area resize 32 -> 16; test = the fonts f % 4 == 3 (unseen
                               in the train part); not a test task: θ is selected on it, and
                               meta-training leaves its characters out with
                               task.validation_holdout
omniglot_val        256   40   meta-validation Omniglot characters (i % 6 == 5 of 242, every
                               alphabet), area resize 105 -> 16; per character the first 14
                               drawers (file order) train, the last 6 test; not a test task: θ is
                               selected on it, meta-training leaves them out when
                               task.validation_holdout_sources holds omniglot
two_moons           2     2    synthetic two-moons (seeded), raw coordinates
npz:PATH            any   any  your arrays (x_train, y_train, x_test, y_test, or x, y split here)
folder:PATH         s²    any  your images, PATH/<class>/*.png|jpg: grey (or RGB: 3s²), area
                               resize to s = ``image_size`` (evaluation.own_image_size), [0, 1]
=================== ===== ==== =================================================================

The last two, your own data, are not in ``EVAL_TASKS`` (a prefix, not a name): tasks/own_data.py
describes their formats, checks and seeded train/test split; their ``name`` is
``npz_<file stem>`` / ``folder_<folder name>``.

Unlabelled stream and support sets come from the train split (as the released code's
TinyMnist: both from the train split); ``test_set`` is the test split. Data sets without
a test split: ``imagenet_heldout`` and ``imagenet_val`` keep, per class, the first 40 images
(in validation file-number order) as "train" and the last 10 as "test"; ``two_moons`` uses its seeded
train (2,000) and test (1,000) draws. Inputs are flattened and not permuted (the base
model permutes). ``test_set(max_examples)`` without an rng takes a fixed, seeded subset.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from meta_unsup_rules.tasks import data_dir as dd
from meta_unsup_rules.tasks import datasets as ds
from meta_unsup_rules.tasks import image_ops, own_data, sampling
from meta_unsup_rules.util import memo

EVAL_TASKS = (
  "tiny_mnist",
  "tiny_fashion_mnist",
  "mnist",
  "fashion_mnist",
  "imdb",
  "imagenet_heldout",
  "imagenet_val",
  "alphabet_val",
  "omniglot_val",
  "two_moons",
)
# Tasks reported in the final results only: never a basis for choosing anything (a θ selected on
# one has a tainted lineage, distributed/provenance.py).
TEST_TASKS = ("tiny_mnist", "tiny_fashion_mnist", "mnist", "fashion_mnist", "imdb", "imagenet_heldout")
ALPHABET_VAL_TEST_FONTS = (4, 3)  # a font's examples are "test" iff its index % 4 == 3
IMAGENET_SPLITS = {"imagenet_heldout": "test", "imagenet_val": "val"}  # task -> tasks.datasets split
OMNIGLOT_VAL_TRAIN_PER_CLASS = 14  # of 20 drawers per character (file order); the other 6 are "test"
IMAGENET_HELDOUT_TRAIN_PER_CLASS = 40  # of 50 per class; the remaining 10 are the test part


@dataclasses.dataclass(frozen=True, eq=False)
class EvalTask:
  """A fixed evaluation task; arrays are read-only float32 [N, input_dim] / int32 [N]."""

  name: str
  input_dim: int
  num_classes: int
  class_names: tuple[str, ...] = ()
  x_train: np.ndarray = dataclasses.field(default=None, repr=False)
  y_train: np.ndarray = dataclasses.field(default=None, repr=False)
  x_test: np.ndarray = dataclasses.field(default=None, repr=False)
  y_test: np.ndarray = dataclasses.field(default=None, repr=False)
  spec: tuple = dataclasses.field(default=(), repr=False)

  def __reduce__(self):
    # Pickle by reference to the (cached) data, not by value.
    return (_make_cached, self.spec)

  def unlabelled_batches(self, rng: np.random.Generator, num_steps: int, batch_size: int) -> np.ndarray:
    """float32 [num_steps, batch_size, input_dim] from the train split (epoch-wise shuffles)."""
    idx = sampling.epoch_indices(rng, np.arange(len(self.x_train)), num_steps * batch_size)
    return self.x_train[idx].reshape(num_steps, batch_size, self.input_dim)

  def support_set(self, rng: np.random.Generator, samples_per_class: int):
    """Class-balanced labelled examples from the train split: (x [C*spc, D], y int32), shuffled."""
    idx = np.concatenate(
      [
        sampling.draw(rng, pool, samples_per_class)
        for pool in sampling.class_pools(self.y_train, self.num_classes)
      ]
    )
    idx = idx[rng.permutation(len(idx))]
    return self.x_train[idx], self.y_train[idx]

  def test_set(self, max_examples: int | None = None, rng: np.random.Generator | None = None):
    """(x, y) of the test split; a random (rng) or fixed seeded subset if max_examples < N."""
    n = len(self.x_test)
    if max_examples is None or max_examples >= n:
      return self.x_test, self.y_test
    if rng is None:
      rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(n, max_examples, replace=False))
    return self.x_test[idx], self.y_test[idx]


def _flat(x: np.ndarray) -> np.ndarray:
  x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
  x.setflags(write=False)
  return x


def _ro(y: np.ndarray) -> np.ndarray:
  y = np.array(y, np.int32)
  y.setflags(write=False)
  return y


def _build(name: str, num_classes: int | None, data_dir, cache_dir, image_size, greyscale) -> EvalTask:
  spec = (name, num_classes, data_dir, cache_dir, image_size, greyscale)
  if own_data.is_own(name):
    d = own_data.load(name, image_size, greyscale)
    x_train, x_test = _flat(d.x_train), _flat(d.x_test)
    return EvalTask(
      d.name,
      x_train.shape[1],
      len(d.class_names),
      d.class_names,
      x_train,
      _ro(d.y_train),
      x_test,
      _ro(d.y_test),
      spec,
    )
  if name in ("tiny_mnist", "tiny_fashion_mnist", "mnist", "fashion_mnist"):
    dname = name.replace("tiny_", "")
    tr, te = (ds.load_raw(dname, s, data_dir, cache_dir, memoize=False) for s in ("train", "test"))
    if name.startswith("tiny_"):
      xs = [image_ops.resize(d.x, 14, "bilinear") / 255.0 for d in (tr, te)]
    else:
      xs = [d.x.astype(np.float32) / 255.0 for d in (tr, te)]
    return EvalTask(
      name, xs[0][0].size, 10, tr.class_names, _flat(xs[0]), _ro(tr.y), _flat(xs[1]), _ro(te.y), spec
    )
  if name == "imdb":
    tr, te = (ds.load_raw("imdb", s, data_dir, cache_dir, memoize=False) for s in ("train", "test"))
    return EvalTask(
      name, tr.x.shape[1], 2, tr.class_names, _flat(tr.x), _ro(tr.y), _flat(te.x), _ro(te.y), spec
    )
  if name in IMAGENET_SPLITS:
    raw = ds.load_raw("imagenet", IMAGENET_SPLITS[name], data_dir, cache_dir, memoize=False)
    c = 10 if num_classes is None else int(num_classes)
    if not 2 <= c <= raw.num_classes:
      raise ValueError(f"{name}: num_classes must be in [2, {raw.num_classes}]")
    tr_idx, te_idx = [], []
    for k in range(c):
      idx = np.flatnonzero(raw.y == k)  # validation-file order within the class
      tr_idx.append(idx[:IMAGENET_HELDOUT_TRAIN_PER_CLASS])
      te_idx.append(idx[IMAGENET_HELDOUT_TRAIN_PER_CLASS:])
    tr_idx, te_idx = np.sort(np.concatenate(tr_idx)), np.sort(np.concatenate(te_idx))
    x = image_ops.resize(image_ops.to_grey(raw.x[np.concatenate([tr_idx, te_idx])]), 16, "area")
    x = np.clip(x / 255.0, 0.0, 1.0)
    return EvalTask(
      name,
      256,
      c,
      raw.class_names[:c],
      _flat(x[: len(tr_idx)]),
      _ro(raw.y[tr_idx]),
      _flat(x[len(tr_idx) :]),
      _ro(raw.y[te_idx]),
      spec,
    )
  if name == "alphabet_val":
    raw = ds.load_raw("alphabet", "val", data_dir, cache_dir, memoize=False)
    mod, rem = ALPHABET_VAL_TEST_FONTS
    test = np.asarray(raw.extra["font"]) % mod == rem
    x = np.clip(image_ops.resize(raw.x, 16, "area") / 255.0, 0.0, 1.0)
    return EvalTask(
      name,
      256,
      raw.num_classes,
      raw.class_names,
      _flat(x[~test]),
      _ro(raw.y[~test]),
      _flat(x[test]),
      _ro(raw.y[test]),
      spec,
    )
  if name == "omniglot_val":
    raw = ds.load_raw("omniglot", "val", data_dir, cache_dir, memoize=False)
    order = [np.flatnonzero(raw.y == k) for k in range(raw.num_classes)]  # file order in a class
    tr_idx = np.sort(np.concatenate([i[:OMNIGLOT_VAL_TRAIN_PER_CLASS] for i in order]))
    te_idx = np.sort(np.concatenate([i[OMNIGLOT_VAL_TRAIN_PER_CLASS:] for i in order]))
    x = np.clip(image_ops.resize(raw.x, 16, "area") / 255.0, 0.0, 1.0)
    return EvalTask(
      name,
      256,
      raw.num_classes,
      raw.class_names,
      _flat(x[tr_idx]),
      _ro(raw.y[tr_idx]),
      _flat(x[te_idx]),
      _ro(raw.y[te_idx]),
      spec,
    )
  if name == "two_moons":
    tr, te = (ds.load_raw("two_moons", s) for s in ("train", "test"))
    return EvalTask(name, 2, 2, tr.class_names, _flat(tr.x), _ro(tr.y), _flat(te.x), _ro(te.y), spec)
  raise ValueError(f"unknown evaluation task {name!r}; known: {EVAL_TASKS}")


@memo.locked_lru_cache(maxsize=16)
def _make_cached(name, num_classes, data_dir, cache_dir, image_size, greyscale) -> EvalTask:
  return _build(name, num_classes, data_dir, cache_dir, image_size, greyscale)


def make_eval_task(
  name: str,
  data_dir=None,
  cache_dir=None,
  num_classes: int | None = None,
  image_size: int = 16,
  greyscale: bool = True,
) -> EvalTask:
  """The evaluation task ``name`` (memoised per process). See the module docstring.

  ``num_classes`` applies to the imagenet tasks only; ``image_size`` and ``greyscale`` to
  ``folder:PATH`` tasks only (scripts.evaluate passes
  ``evaluation.own_image_size`` / ``own_greyscale``; the defaults are configs/paper.py's).
  """
  if own_data.is_own(name):
    if name.startswith("npz:"):  # one cache entry per file, whatever the folder settings
      return _make_cached(own_data.canonical(name), None, None, None, None, None)
    return _make_cached(own_data.canonical(name), None, None, None, int(image_size), bool(greyscale))
  if name not in EVAL_TASKS:
    raise ValueError(f"unknown evaluation task {name!r}; known: {EVAL_TASKS}, npz:PATH, folder:PATH")
  data_dir = None if name == "two_moons" else str(dd.resolve_data_dir(data_dir))
  cache_dir = str(dd.resolve_cache_dir(cache_dir))
  return _make_cached(name, num_classes, data_dir, cache_dir, None, None)
