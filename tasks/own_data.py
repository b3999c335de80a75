"""Evaluation tasks on your own data: ``--task=npz:PATH`` and ``--task=folder:PATH``.

``npz:PATH``, a NumPy ``.npz`` file (``np.savez``) holding either
  * ``x_train``, ``y_train``, ``x_test``, ``y_test``: your split, used as it is; or
  * ``x``, ``y``: split here (see "Split").
  ``x``: [N, ...] numeric, one example per row, flattened to float32 [N, D]. Values are used
  as stored, never rescaled (features need not be images); the built-in image tasks lie in
  [0, 1], so divide 8-bit images by 255 before saving. Every value must be finite.
  ``y``: [N] integer class ids; the train labels must be exactly 0..C-1 (C >= 2), the test
  labels among them. Other arrays in the file are ignored.

``folder:PATH``: ``PATH/<class>/<image>`` with .png / .jpg / .jpeg images; the sorted sub-folder
  names are the classes 0..C-1 (entries starting with "." and files of other types are
  skipped). Each image is read with Pillow as RGB, turned into BT.601 grey unless
  ``evaluation.own_greyscale`` is False (then D = 3 s²), area-resized to s x s with
  s = ``evaluation.own_image_size`` (the aspect ratio is not kept) and scaled to [0, 1]: the
  pipeline of the meta-training images (tasks/meta_train.py), so the rule sees inputs like
  the ones it was trained on.

Split (the ``x``, ``y`` layout and folders): per class, one permutation seeded by
``SPLIT_SEED``; its first max(1, round(``TEST_FRACTION`` · n_c)) examples, at most n_c - 1,
are the test part, the rest the train part. Fixed, so every run, seed and method sees the
same split. The task's name, used in the results and the default output directory, is
``npz_<file stem>`` or ``folder_<folder name>``.

Every problem raises :class:`tasks.DataError` saying what was found and what is expected;
the scripts exit with status 2. ``check_per_class`` (enough train examples per class for
the protocol's support sets) needs the evaluation config: scripts.evaluate's setup calls it.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

from meta_unsup_rules.tasks import image_ops
from meta_unsup_rules.tasks.data_dir import DataError

PREFIXES = ("npz:", "folder:")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLIT_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
WHOLE_ARRAYS = ("x", "y")


class OwnData(NamedTuple):
  """What eval_tasks turns into an EvalTask: x [N, ...] float32, y int64 in 0..C-1."""

  name: str
  class_names: tuple[str, ...]
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def is_own(task: str) -> bool:
  return isinstance(task, str) and task.startswith(PREFIXES)


def canonical(task: str) -> str:
  """``npz:PATH`` / ``folder:PATH`` with an absolute path (one cache entry per file)."""
  kind, path = task.split(":", 1)
  if not path:
    raise DataError(f"task {task!r} names no path: {kind}:PATH is expected")
  return f"{kind}:{os.path.abspath(os.path.expanduser(path))}"


def load(task: str, image_size: int, greyscale: bool) -> OwnData:
  """The data of ``npz:PATH`` or ``folder:PATH`` (see the module docstring)."""
  kind, path = canonical(task).split(":", 1)
  if kind == "npz":
    return _load_npz(path)
  return _load_folder(path, int(image_size), bool(greyscale))


def check_per_class(task, needed: int, field: str) -> None:
  """Raises DataError when a class has fewer than ``needed`` train examples.

  Support sets draw ``needed`` examples per class from the train split; sampling.draw would
  repeat examples of a smaller class, which on your data is more likely a mistake.
  """
  counts = np.bincount(task.y_train, minlength=task.num_classes)
  short = [c for c in range(task.num_classes) if counts[c] < needed]
  if short:
    listed = ", ".join(f"{_class(task.class_names, c)}: {counts[c]}" for c in short[:10])
    raise DataError(
      f"{task.name}: {len(short)} class(es) have fewer train examples than {field} = {needed} "
      f"({listed}{', ...' if len(short) > 10 else ''}); at least {needed} per class are expected: "
      f"add examples or lower {field}"
    )


# ----------------------------------------------------------------------------- npz


def _load_npz(path: str) -> OwnData:
  if not os.path.isfile(path):
    raise DataError(f"npz file {path} does not exist (or is not a file)")
  try:
    with np.load(path, allow_pickle=False) as f:
      names = set(f.files)
      if set(SPLIT_ARRAYS) <= names:
        arrays = {k: _array(f, k, path) for k in SPLIT_ARRAYS}
      elif set(WHOLE_ARRAYS) <= names and not names & set(SPLIT_ARRAYS):
        arrays = {k: _array(f, k, path) for k in WHOLE_ARRAYS}
      else:
        raise DataError(
          f"{path} holds the arrays {sorted(names)}; expected x_train, y_train, x_test, y_test "
          "(your split) or x, y (split here, seeded)"
        )
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (zip, pickle and format errors alike)
    raise DataError(f"cannot read {path} as an .npz file ({type(e).__name__}: {e})") from None
  name = "npz_" + _safe(os.path.splitext(os.path.basename(path))[0])
  if "x" in arrays:
    x, y = _checked_pair(arrays["x"], arrays["y"], "x", "y")
    num_classes = _check_labels(y, "y")
    train, test = _split(y, num_classes)
    x_tr, y_tr, x_te, y_te = x[train], y[train], x[test], y[test]
  else:
    x_tr, y_tr = _checked_pair(arrays["x_train"], arrays["y_train"], "x_train", "y_train")
    x_te, y_te = _checked_pair(arrays["x_test"], arrays["y_test"], "x_test", "y_test")
    if x_tr.shape[1:] != x_te.shape[1:]:
      raise DataError(
        f"x_train's examples have shape {x_tr.shape[1:]} but x_test's {x_te.shape[1:]}; the same is expected"
      )
    num_classes = _check_labels(y_tr, "y_train")
    bad = np.unique(y_te[(y_te < 0) | (y_te >= num_classes)])
    if len(bad):
      raise DataError(
        f"y_test has labels outside y_train's classes 0..{num_classes - 1}: {_few(bad)}; "
        "test labels must be among the train labels"
      )
  return OwnData(name, tuple(str(c) for c in range(num_classes)), x_tr, y_tr, x_te, y_te)


def _array(f, key: str, path: str) -> np.ndarray:
  try:
    return f[key]
  except ValueError as e:  # object arrays need pickle, which we do not load
    raise DataError(
      f"{path}: array {key!r} cannot be read without pickle ({e}); save numeric arrays"
    ) from None


def _checked_pair(x: np.ndarray, y: np.ndarray, xn: str, yn: str) -> tuple[np.ndarray, np.ndarray]:
  if x.ndim < 2:
    raise DataError(f"{xn} has shape {x.shape}; [N, D] or [N, H, W, ...] (one example per row) is expected")
  if y.ndim != 1:
    raise DataError(f"{yn} has shape {y.shape}; [N] (one integer label per example) is expected")
  if len(x) != len(y):
    raise DataError(f"{xn} has {len(x)} examples but {yn} has {len(y)} labels; the same number is expected")
  if len(x) == 0 or x[0].size == 0:
    raise DataError(f"{xn} has shape {x.shape}; at least one example with at least one value is expected")
  if x.dtype.kind not in "biuf":
    raise DataError(f"{xn} has dtype {x.dtype}; numbers (bool, integer or float) are expected")
  x = x.astype(np.float32)
  finite = np.isfinite(x.reshape(len(x), -1))
  if not finite.all():
    rows = np.flatnonzero(~finite.all(axis=1))
    raise DataError(
      f"{xn} has {int((~finite).sum())} non-finite values (NaN or ±inf, possibly from float32 overflow) "
      f"in {len(rows)} examples (indices {_few(rows)}); finite values are expected"
    )
  return x, _integer_labels(y, yn)


def _integer_labels(y: np.ndarray, yn: str) -> np.ndarray:
  if y.dtype.kind in "iub":
    return y.astype(np.int64)
  if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
    return y.astype(np.int64)
  raise DataError(f"{yn} has dtype {y.dtype} with non-integer values; integer class ids 0..C-1 are expected")


def _check_labels(y: np.ndarray, yn: str) -> int:
  """The number of classes C; raises unless the labels are exactly 0..C-1 with C >= 2."""
  present = np.unique(y)
  num_classes = int(present.max()) + 1 if present.max() >= 0 else 0
  missing = np.setdiff1d(np.arange(num_classes), present)
  negative = present[present < 0]
  if len(missing) or len(negative):
    problems = [f"missing {_few(missing)}"] if len(missing) else []
    problems += [f"out of range (negative) {_few(negative)}"] if len(negative) else []
    raise DataError(
      f"{yn}'s labels must be exactly 0..C-1 with every class present; found the {len(present)} "
      f"distinct labels {_few(present)}: {'; '.join(problems)}"
    )
  if num_classes < 2:
    raise DataError(f"{yn} has only {num_classes} class (label 0); at least 2 classes are expected")
  return num_classes


# ----------------------------------------------------------------------------- folder


def _load_folder(path: str, image_size: int, greyscale: bool) -> OwnData:
  from PIL import Image  # pylint: disable=g-import-not-at-top  (only folder tasks need Pillow)

  if not os.path.isdir(path):
    raise DataError(f"folder {path} does not exist (or is not a folder)")
  entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
  classes = [e for e in entries if os.path.isdir(os.path.join(path, e))]
  loose = [e for e in entries if e.lower().endswith(IMAGE_SUFFIXES)]
  if len(classes) < 2:
    found = f"{len(classes)} class sub-folder(s) {classes}" + (
      f" and {len(loose)} images directly in it" if loose else ""
    )
    raise DataError(
      f"folder {path} has {found}; at least 2 sub-folders, one per class, each holding its images "
      f"({'/'.join(IMAGE_SUFFIXES)}), are expected"
    )
  images, labels = [], []
  for c, cls in enumerate(classes):
    cdir = os.path.join(path, cls)
    files = sorted(f for f in os.listdir(cdir) if not f.startswith("."))
    pics = [f for f in files if f.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(cdir, f))]
    if not pics:
      raise DataError(
        f"class folder {cdir} has no images ({len(files)} other entries); "
        f"at least one {'/'.join(IMAGE_SUFFIXES)} file is expected"
      )
    for f in pics:
      images.append(_read_image(Image, os.path.join(cdir, f), image_size, greyscale))
    labels += [c] * len(pics)
  x, y = np.stack(images), np.array(labels, np.int64)
  train, test = _split(y, len(classes))
  name = "folder_" + _safe(os.path.basename(os.path.normpath(path)))
  return OwnData(name, tuple(classes), x[train], y[train], x[test], y[test])


def _read_image(image_module, file: str, size: int, greyscale: bool) -> np.ndarray:
  try:
    with image_module.open(file) as im:
      rgb = np.asarray(im.convert("RGB"))
  except Exception as e:  # pylint: disable=broad-except  (Pillow raises many types)
    raise DataError(
      f"cannot read image {file} ({type(e).__name__}: {e}); a PNG or JPEG is expected"
    ) from None
  pixels = image_ops.to_grey(rgb[None]) if greyscale else rgb[None]
  return np.clip(image_ops.resize(pixels, size, "area")[0] / 255.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- shared


def _split(y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """Sorted (train, test) indices: a seeded class-stratified split (module docstring)."""
  rng = np.random.default_rng(SPLIT_SEED)
  train, test = [], []
  for c in range(num_classes):
    idx = np.flatnonzero(y == c)
    idx = idx[rng.permutation(len(idx))]
    k = min(len(idx) - 1, max(1, round(TEST_FRACTION * len(idx))))
    test.append(idx[:k])
    train.append(idx[k:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _few(values, limit: int = 10) -> str:
  values = [int(v) for v in values]
  return ", ".join(map(str, values[:limit])) + (
    f", ... ({len(values)} in all)" if len(values) > limit else ""
  )


def _class(class_names, c: int) -> str:
  return (
    f"class {c} ({class_names[c]!r})" if c < len(class_names) and class_names[c] != str(c) else f"class {c}"
  )


def _safe(s: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", s) or "data"
