"""Meta-training task distribution (docs/method.md §5): dataset x classes x architecture x permutation.

A task is sampled from an explicit ``np.random.Generator`` in this order: data set (by
``dataset_weights``), number of classes (uniform over ``num_classes_choices``, capped at
the data set's class count), the class subset (uniform without replacement, sorted),
the base-model architecture, the pixel permutation. Same generator state -> same task.

Every setting comes from the config's ``task`` section (configs/paper.py holds the values;
"paper.py" below); ``validate_config`` checks it once at start, before any data is loaded.

Data sets (``datasets``; paper.py: the paper's three): ``imagenet`` = the 160 Tiny-ImageNet
meta-training classes (the 40 held-out "ImageNet test" classes are never used here; with
``validation_holdout=True`` only 120: the 40 meta-validation classes, i % 5 == 3, are left
out and form the evaluation task ``imagenet_val`` on which θ is selected),
``alphabet`` (rendered fonts, 62 classes), ``cifar10`` (train split); ``omniglot``,
``mnist`` and ``fashion_mnist`` (train splits) may be added to the mixture.

Inputs: every image is resized to ``image_size`` x ``image_size`` (paper.py: 16) with area
averaging; with ``greyscale=True`` (paper.py) colour images are converted to BT.601 luma
first, so every input has 16*16 = 256 features; with ``greyscale=False`` colour inputs
keep 3 channels (768 features; grey sets stay 256). Values are in [0, 1] before
augmentation. Inputs are returned flattened in row-major (h, w[, c]) order and *not*
permuted: the base model applies ``task.permutation`` (``x[..., permutation]``). The
resized arrays are cached on disk (``meta_<name>-<key>.npz``) and memoised per process.

Unlabelled / labelled split: in each data set, each class's examples are split once, by a
fixed permutation (``np.random.default_rng([split_seed, crc32(name)])``), into a
labelled part (``round(labelled_fraction * n)``, at least 1, at most n - 1) and an
unlabelled part (the rest). ``unlabelled_batches`` only draws from the unlabelled part of
the task's classes (epoch-wise without replacement); ``labelled_batches`` only from the
labelled part, so the meta-objective is evaluated on examples the inner loop never
trained on. paper.py (0.4): Tiny-ImageNet 50/class -> 20 labelled + 30 unlabelled; CIFAR-10
5,000/class -> 2,000 + 3,000; Alphabet (#fonts/class) -> 40% + 60%. Batches a and b of a
step take 2 x samples_per_class distinct labelled examples per class when the labelled
part has that many. Below that, with ``disjoint_batches=True`` (paper.py) each step splits the
class's labelled examples at random into two halves, a drawing only from one and b only from
the other (with replacement where a half has fewer than samples_per_class), so the ridge
readout is never scored on (augmented copies of) its own training points; with
``disjoint_batches=False`` (runs stored before the setting) a and b are drawn independently,
without replacement when there are samples_per_class, else with replacement (Omniglot's 8
labelled examples per class: a and b from the same 8).

Augmentation (``augment=True``): per example, shift, rotation and additive Gaussian noise
(``tasks.image_ops``), on both streams. The labelled targets are the one-hot label in
{0, 1} followed by the 4 regression targets ``[dx/max_shift, dy/max_shift,
angle/max_rotation, noise_std/max_noise]`` (``num_regression_targets = 4``; 0 when
``augment=False``). paper.py: max_shift 2 px (of 16), max_rotation 15 degrees,
max_noise 0.1 (std, pixel range [0, 1]).

Architecture (``layer_widths`` = hidden widths then ``top_width``): depth ~ uniform
{depth_min..depth_max} hidden layers (paper.py: 2..5), width log-uniform in [width_min, width_max]
(64..512), one width for all hidden layers unless ``per_layer_widths``; with
``width_grid = G > 0`` the width is uniform over G log-spaced integers
``round(geomspace(width_min, width_max, G))`` (a discrete log-uniform; fewer distinct
shapes -> fewer JAX recompilations), with ``width_grid = 0`` it is continuous and
rounded to an integer. The top layer is always ``top_width`` (32).

Length (~410 lines): the sampling order above decides every random draw of a run, so the
task, its sources and their splits stay in one module where that order can be read whole.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from meta_unsup_rules.tasks import data_dir as dd
from meta_unsup_rules.tasks import datasets as ds
from meta_unsup_rules.tasks import image_ops, sampling
from meta_unsup_rules.util import config_compat, memo
from meta_unsup_rules.util.config_check import Section

SOURCE_VERSION = 1  # of the meta-training preprocessing (disk-cache key)
META_TRAIN_SOURCES = {
  # name -> (load_dataset name, split)
  "imagenet": ("imagenet", "train"),
  "alphabet": ("alphabet", "train"),
  "cifar10": ("cifar10", "train"),
  "omniglot": ("omniglot", "train"),
  "mnist": ("mnist", "train"),
  "fashion_mnist": ("fashion_mnist", "train"),
}

# --------------------------------------------------------------------- data sources


@dataclasses.dataclass(frozen=True, eq=False)
class MetaTrainSource:
  """A data set preprocessed for meta-training, with its fixed per-class split."""

  name: str
  x: np.ndarray  # float32 [N, s, s] or [N, s, s, 3], in [0, 1]
  y: np.ndarray  # int32 [N]
  num_classes: int
  class_names: tuple[str, ...]
  labelled: tuple[np.ndarray, ...]  # per class: indices into x
  unlabelled: tuple[np.ndarray, ...]

  @property
  def input_dim(self) -> int:
    return int(np.prod(self.x.shape[1:]))


def split_per_class(y: np.ndarray, num_classes: int, labelled_fraction: float, seed) -> tuple:
  """Deterministic per-class (labelled, unlabelled) index split (see module docstring)."""
  rng = np.random.default_rng(seed)
  labelled, unlabelled = [], []
  for c in range(num_classes):
    idx = np.flatnonzero(y == c)
    idx = idx[rng.permutation(len(idx))]
    n_lab = int(np.clip(round(labelled_fraction * len(idx)), 1, max(len(idx) - 1, 1)))
    labelled.append(np.sort(idx[:n_lab]).astype(np.int64))
    unlabelled.append(np.sort(idx[n_lab:]).astype(np.int64))
  return tuple(labelled), tuple(unlabelled)


@memo.locked_lru_cache(maxsize=16)
def _meta_train_source(
  name, split, image_size, greyscale, resize_method, labelled_fraction, split_seed, data_dir, cache_dir
) -> MetaTrainSource:
  if name not in META_TRAIN_SOURCES:
    raise ValueError(f"unknown meta-training data set {name!r}; known: {tuple(META_TRAIN_SOURCES)}")
  dname = META_TRAIN_SOURCES[name][0]

  def build():
    raw = ds.load_raw(dname, split, data_dir, cache_dir, memoize=False)
    x = raw.x
    if greyscale and x.ndim == 4:
      x = image_ops.to_grey(x)
    x = image_ops.resize(x, image_size, resize_method)
    x *= np.float32(1.0 / raw.scale)
    np.clip(x, 0.0, 1.0, out=x)
    return {"x": x, "y": raw.y, "class_names": np.array(raw.class_names, dtype=str)}

  key = (
    SOURCE_VERSION,
    split,
    image_size,
    greyscale,
    resize_method,
    ds.cache_identity(dname, data_dir, cache_dir),
  )
  a = dd.cached_arrays(f"meta_{name}", key, build, cache_dir)
  x, y = a["x"], a["y"]
  x.setflags(write=False)
  y.setflags(write=False)
  class_names = tuple(a["class_names"].tolist())
  labelled, unlabelled = split_per_class(
    y, len(class_names), labelled_fraction, [split_seed, zlib.crc32(name.encode())]
  )
  return MetaTrainSource(name, x, y, len(class_names), class_names, labelled, unlabelled)


HOLDOUT_SOURCES = ("imagenet", "alphabet", "omniglot")  # sources with a "train_minus_val" split


def source_split(name: str, cfg) -> str:
  """The split a meta-training source reads: with `validation_holdout`, the sources named in
  `validation_holdout_sources` leave out their meta-validation classes (tasks.datasets:
  imagenet i % 5 == 3, alphabet i % 6 == 5, omniglot i % 6 == 5), which become the
  `imagenet_val`, `alphabet_val` and `omniglot_val` tasks."""
  if bool(cfg.validation_holdout) and name in tuple(cfg.validation_holdout_sources):
    return "train_minus_val"
  return META_TRAIN_SOURCES[name][1]


def meta_train_source(name: str, cfg, data_dir=None, cache_dir=None) -> MetaTrainSource:
  """Preprocessed data set for meta-training (memoised per process); `cfg`: the task section."""
  if name not in META_TRAIN_SOURCES:
    raise ValueError(f"unknown meta-training data set {name!r}; known: {tuple(META_TRAIN_SOURCES)}")
  dname = META_TRAIN_SOURCES[name][0]
  data_dir = str(dd.resolve_data_dir(data_dir)) if ds.raw_files(dname) else None
  cache_dir = str(dd.resolve_cache_dir(cache_dir))
  return _meta_train_source(
    name,
    source_split(name, cfg),
    int(cfg.image_size),
    bool(cfg.greyscale),
    str(cfg.resize_method),
    float(cfg.labelled_fraction),
    int(cfg.split_seed),
    data_dir,
    cache_dir,
  )


# ------------------------------------------------------------------- architectures


def width_grid_values(cfg) -> np.ndarray:
  g = int(cfg.width_grid)
  lo, hi = int(cfg.width_min), int(cfg.width_max)
  return np.unique(np.round(np.geomspace(lo, hi, g)).astype(np.int64))


def sample_layer_widths(rng: np.random.Generator, cfg) -> tuple[int, ...]:
  """Hidden widths (depth_min..depth_max layers, log-uniform widths), then top_width."""
  depth = int(rng.integers(int(cfg.depth_min), int(cfg.depth_max) + 1))
  n = depth if cfg.per_layer_widths else 1
  if int(cfg.width_grid) > 0:
    grid = width_grid_values(cfg)
    widths = grid[rng.integers(0, len(grid), size=n)]
  else:
    lo, hi = np.log(float(cfg.width_min)), np.log(float(cfg.width_max))
    widths = np.round(np.exp(rng.uniform(lo, hi, size=n))).astype(np.int64)
  if n == 1:
    widths = np.repeat(widths, depth)
  return tuple(int(w) for w in widths) + (int(cfg.top_width),)


# --------------------------------------------------------------------------- tasks


@dataclasses.dataclass(frozen=True, eq=False)
class MetaTrainTask:
  """One meta-training task. Inputs are flattened, augmented and NOT permuted."""

  dataset: str
  classes: np.ndarray  # int64 [C]: class ids of the source data set
  permutation: np.ndarray  # int32 [input_dim], a bijection (applied by the base model)
  layer_widths: tuple[int, ...]  # hidden widths..., then top width
  input_dim: int
  num_classes: int
  num_regression_targets: int
  samples_per_class: int = 10
  disjoint_batches: bool = False
  augment: bool = True
  max_shift: float = 2.0
  max_rotation: float = 15.0
  max_noise: float = 0.1
  source: MetaTrainSource | None = dataclasses.field(default=None, repr=False)

  def to_dict(self) -> dict:
    """The task without its images: plain values plus the `classes` and `permutation` arrays.

    What a checkpoint stores (no pickle): `from_dict` with the source re-loaded by
    `meta_train_source(dataset, cfg, data_dir)` gives back an identical task.
    """
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
    d["classes"] = np.asarray(self.classes)
    d["permutation"] = np.asarray(self.permutation)
    d["layer_widths"] = [int(w) for w in self.layer_widths]
    return d

  @classmethod
  def from_dict(cls, d, source: MetaTrainSource) -> "MetaTrainTask":
    """Inverse of `to_dict`, checked against `source` (ValueError says what does not fit)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"source"}
    d = {"disjoint_batches": False, **d}  # checkpoints written before the setting
    if set(d) != names:
      raise ValueError(f"task description fields {sorted(d)} differ from {sorted(names)}")
    if d["dataset"] != source.name:
      raise ValueError(f"task of data set {d['dataset']!r} given the source {source.name!r}")
    classes = np.asarray(d["classes"], np.int64)
    permutation = np.asarray(d["permutation"], np.int32)
    input_dim = int(d["input_dim"])
    if input_dim != source.input_dim:
      raise ValueError(
        f"task input_dim {input_dim} but {source.name} now has {source.input_dim} "
        "features (another image_size / greyscale?)"
      )
    if (
      classes.ndim != 1
      or len(classes) != int(d["num_classes"])
      or len(classes) == 0
      or classes.min() < 0
      or classes.max() >= source.num_classes
    ):
      raise ValueError(
        f"task classes {classes.tolist()} do not fit {d['num_classes']} of "
        f"{source.name}'s {source.num_classes} classes"
      )
    if permutation.shape != (input_dim,) or not np.array_equal(np.sort(permutation), np.arange(input_dim)):
      raise ValueError(f"task permutation is not a permutation of {input_dim} features")
    return cls(
      dataset=str(d["dataset"]),
      classes=classes,
      permutation=permutation,
      layer_widths=tuple(int(w) for w in d["layer_widths"]),
      input_dim=input_dim,
      num_classes=int(d["num_classes"]),
      num_regression_targets=int(d["num_regression_targets"]),
      samples_per_class=int(d["samples_per_class"]),
      disjoint_batches=bool(d["disjoint_batches"]),
      augment=bool(d["augment"]),
      max_shift=float(d["max_shift"]),
      max_rotation=float(d["max_rotation"]),
      max_noise=float(d["max_noise"]),
      source=source,
    )

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self.source.class_names[c] for c in self.classes)

  def _prepare(self, rng, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    images = self.source.x[idx]
    targets = None
    if self.augment:
      images, targets = image_ops.augment(rng, images, self.max_shift, self.max_rotation, self.max_noise)
    return images.reshape(len(idx), -1).astype(np.float32, copy=False), targets

  def unlabelled_batches(self, rng: np.random.Generator, num_steps: int, batch_size: int) -> np.ndarray:
    """float32 [num_steps, batch_size, input_dim] from the unlabelled part of the classes."""
    pool = np.concatenate([self.source.unlabelled[c] for c in self.classes])
    idx = sampling.epoch_indices(rng, pool, num_steps * batch_size)
    x, _ = self._prepare(rng, idx)
    return x.reshape(num_steps, batch_size, self.input_dim)

  def labelled_batches(self, rng: np.random.Generator, num_steps: int):
    """(x [S, 2K, D], targets [S, 2K, C + R], labels int32 [S, 2K]), K = spc * C.

    Rows [:K] are batch a and rows [K:] batch b; each holds exactly samples_per_class
    examples of every class, shuffled within the half. targets = one-hot in {0, 1}, then the
    augmentation regression targets.
    """
    spc, c = self.samples_per_class, self.num_classes
    k = spc * c
    idx = np.empty((num_steps, 2, c, spc), np.int64)
    for j, cls in enumerate(self.classes):
      pool = self.source.labelled[cls]
      n = len(pool)
      if n >= 2 * spc:
        pick = np.argsort(rng.random((num_steps, n)), axis=1)[:, : 2 * spc]
        idx[:, :, j, :] = pool[pick].reshape(num_steps, 2, spc)
      elif self.disjoint_batches:
        idx[:, :, j, :] = _from_disjoint_halves(rng, pool, num_steps, spc)
      elif n >= spc:
        pick = np.argsort(rng.random((num_steps, 2, n)), axis=2)[:, :, :spc]
        idx[:, :, j, :] = pool[pick]
      else:
        idx[:, :, j, :] = pool[rng.integers(0, n, size=(num_steps, 2, spc))]
    labels = np.broadcast_to(np.arange(c, dtype=np.int32)[None, None, :, None], idx.shape).reshape(
      num_steps, 2, k
    )
    idx = idx.reshape(num_steps, 2, k)
    order = np.argsort(rng.random((num_steps, 2, k)), axis=2)
    idx = np.take_along_axis(idx, order, axis=2).reshape(num_steps, 2 * k)
    labels = np.take_along_axis(labels, order, axis=2).reshape(num_steps, 2 * k)
    x, reg = self._prepare(rng, idx.reshape(-1))
    onehot = np.eye(c, dtype=np.float32)[labels.reshape(-1)]
    targets = onehot if reg is None else np.concatenate([onehot, reg], axis=1)
    return (
      x.reshape(num_steps, 2 * k, self.input_dim),
      targets.reshape(num_steps, 2 * k, c + self.num_regression_targets),
      labels.astype(np.int32),
    )


def _from_disjoint_halves(rng: np.random.Generator, pool: np.ndarray, num_steps: int, spc: int) -> np.ndarray:
  """[num_steps, 2, spc] indices: per step `pool` shuffled and cut into halves, a's spc drawn from
  the first and b's from the second (with replacement where a half is short; a class with one
  labelled example gives it to a and b alike, the only case they can share)."""
  n = len(pool)
  half = max(n // 2, 1)
  order = np.argsort(rng.random((num_steps, n)), axis=1)
  first, second = order[:, :half], order[:, half:] if n > 1 else order[:, :1]
  sizes = np.array([first.shape[1], second.shape[1]])
  draws = rng.integers(0, 2**31 - 1, size=(num_steps, 2, spc)) % sizes[None, :, None]
  out = np.empty((num_steps, 2, spc), np.int64)
  out[:, 0] = pool[np.take_along_axis(first, draws[:, 0], axis=1)]
  out[:, 1] = pool[np.take_along_axis(second, draws[:, 1], axis=1)]
  return out


def sample_meta_train_task(
  rng: np.random.Generator, cfg, data_dir=None, cache_dir=None, layer_widths=None, num_classes=None
) -> MetaTrainTask:
  """Draws a task (see module docstring). ``cfg``: the config's task section.

  ``layer_widths`` / ``num_classes`` given: the task takes them instead of drawing them (the tasks of
  one vectorised group share a shape, distributed/worker.py); the other draws keep their order."""
  if not isinstance(rng, np.random.Generator):
    raise TypeError("rng must be a np.random.Generator")
  names = tuple(cfg.datasets)
  weights = np.asarray(cfg.dataset_weights, np.float64)
  if len(weights) != len(names) or np.any(weights < 0) or weights.sum() <= 0:
    raise ValueError(f"dataset_weights {tuple(weights)} do not fit datasets {names}")
  data_dir = data_dir if data_dir is not None else getattr(cfg, "data_dir", None)
  name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
  source = meta_train_source(name, cfg, data_dir, cache_dir)
  if num_classes is None:
    choices = tuple(cfg.num_classes_choices)
    num_classes = min(int(choices[int(rng.integers(0, len(choices)))]), source.num_classes)
  elif int(num_classes) > source.num_classes:
    raise ValueError(f"a task of {num_classes} classes from {name}, which has {source.num_classes}")
  num_classes = int(num_classes)
  classes = np.sort(rng.choice(source.num_classes, size=num_classes, replace=False))
  widths = sample_layer_widths(rng, cfg) if layer_widths is None else tuple(int(w) for w in layer_widths)
  permutation = rng.permutation(source.input_dim).astype(np.int32)
  augment = bool(cfg.augment)
  return MetaTrainTask(
    dataset=name,
    classes=classes,
    permutation=permutation,
    layer_widths=widths,
    input_dim=source.input_dim,
    num_classes=num_classes,
    num_regression_targets=image_ops.NUM_AUGMENT_TARGETS if augment else 0,
    samples_per_class=int(cfg.samples_per_class),
    disjoint_batches=bool(config_compat.read(cfg, "task.disjoint_batches")),
    augment=augment,
    max_shift=float(cfg.max_shift),
    max_rotation=float(cfg.max_rotation),
    max_noise=float(cfg.max_noise),
    source=source,
  )


# -------------------------------------------------------------------------- config


def validate_config(task_cfg) -> None:
  """Checks the `task` section (raises util.config_check.ConfigError) before any data is loaded.

  A bad value would otherwise surface only in a worker, after the run has started.
  """
  s = Section(task_cfg, "task")
  names = s.subset("datasets", tuple(META_TRAIN_SOURCES))
  s.weights("dataset_weights", length=len(names))
  s.int_at_least("image_size", 2)
  s.boolean("greyscale")
  s.one_of("resize_method", image_ops.RESIZE_METHODS)
  s.ints("num_classes_choices", 2)
  s.int_at_least("samples_per_class", 1)
  s.int_at_least("depth_min", 1)
  s.int_at_least("depth_max", 1)
  s.ordered("depth_min", "depth_max")
  s.int_at_least("width_min", 1)
  s.int_at_least("width_max", 1)
  s.ordered("width_min", "width_max")
  s.int_at_least("top_width", 1)
  s.boolean("per_layer_widths")
  s.int_at_least("width_grid", 0)
  s.boolean("augment")
  s.boolean("disjoint_batches")
  for name in ("max_shift", "max_rotation", "max_noise"):
    s.number(name, lo=0.0)
  s.number("labelled_fraction", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
  s.int_at_least("split_seed", 0)
  s.boolean("validation_holdout")
  s.subset("validation_holdout_sources", HOLDOUT_SOURCES)
