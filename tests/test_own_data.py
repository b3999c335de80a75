"""Evaluation on your own data (tasks/own_data.py): ``npz:PATH`` and ``folder:PATH`` tasks load,
split and fail as documented; scripts.evaluate runs on them and exits 2 on bad input."""

import json
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from meta_unsup_rules import tasks
from meta_unsup_rules.tasks import own_data

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _evaluate(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", "scripts.evaluate", "--config=configs/tiny.py", "--theta=random", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _blobs(num_classes=3, per_class=20, shape=(2, 4), seed=0):
  rng = np.random.default_rng(seed)
  y = np.repeat(np.arange(num_classes), per_class)
  x = rng.normal(size=(num_classes, *shape))[y] + 0.3 * rng.normal(size=(len(y), *shape))
  return x, y


def _npz(tmp_path, name="data", **arrays):
  path = tmp_path / f"{name}.npz"
  np.savez(path, **arrays)
  return f"npz:{path}"


def _image_folder(root, classes=("cat", "dog", "emu"), per_class=12, seed=0):
  """Images of mixed size, mode and format, plus entries the loader must skip."""
  rng = np.random.default_rng(seed)
  for cls in classes:
    d = root / cls
    d.mkdir(parents=True)
    for i in range(per_class):
      h, w = (20, 24) if i % 2 else (12, 12)
      pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      im = Image.fromarray(pixels) if i % 3 else Image.fromarray(pixels[..., 0]).convert("L")
      im.save(d / f"{i:02d}.{'jpg' if i % 4 == 3 else 'png'}")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"skipped")
  (root / ".cache").mkdir()
  return root


def _load(task, image_size=16, greyscale=True):
  return own_data.load(task, image_size, greyscale)


def _error(task, **kw) -> str:
  with pytest.raises(tasks.DataError) as e:
    _load(task, **kw)
  return str(e.value)


# ----------------------------------------------------------------------------- loading


def test_npz_with_its_own_split(tmp_path):
  x, y = _blobs()
  task = _npz(tmp_path, x_train=x[::2], y_train=y[::2], x_test=x[1::2], y_test=y[1::2].astype(np.float64))
  t = tasks.make_eval_task(task)
  assert (t.name, t.input_dim, t.num_classes, t.class_names) == ("npz_data", 8, 3, ("0", "1", "2"))
  assert t.x_train.shape == (30, 8) and t.x_test.shape == (30, 8) and t.x_train.dtype == np.float32
  np.testing.assert_allclose(t.x_train, x[::2].reshape(30, 8).astype(np.float32))  # not rescaled
  np.testing.assert_array_equal(t.y_test, y[1::2])
  assert pickle.loads(pickle.dumps(t)) is t  # by reference, as the built-in tasks
  assert tasks.make_eval_task(task.replace(str(tmp_path), os.path.relpath(tmp_path))) is t


def test_npz_x_y_is_split_seeded_and_stratified(tmp_path):
  x, y = _blobs(per_class=21)
  task = _npz(tmp_path, x=x, y=y)
  d = _load(task)
  assert d.x_train.shape == (3 * 17, 2, 4) and d.x_test.shape == (3 * 4, 2, 4)  # round(0.2 * 21) = 4
  assert np.bincount(d.y_train).tolist() == [17] * 3 and np.bincount(d.y_test).tolist() == [4] * 3
  rows = {r.tobytes() for r in np.concatenate([d.x_train, d.x_test])}
  assert len(rows) == len(x)  # disjoint parts that cover the data
  again = _load(task)
  for a, b in zip(d, again):
    np.testing.assert_array_equal(a, b)
  np.savez(tmp_path / "shuffled.npz", x=x[::-1], y=y[::-1])
  other = _load(f"npz:{tmp_path / 'shuffled.npz'}")
  assert not np.array_equal(np.sort(d.x_test, axis=0), np.sort(other.x_test, axis=0))  # the rule is seeded
  # A class of 2 keeps one example for training; every class keeps at least one.
  two = _load(_npz(tmp_path, "two", x=x[:4], y=np.array([0, 0, 1, 1])))
  assert np.bincount(two.y_train).tolist() == [1, 1]


@pytest.mark.parametrize("greyscale, dim", [(True, 64), (False, 192)])
def test_folder_task(tmp_path, greyscale, dim):
  folder = _image_folder(tmp_path / "pets")
  t = tasks.make_eval_task(f"folder:{folder}", image_size=8, greyscale=greyscale)
  assert (t.name, t.input_dim, t.num_classes, t.class_names) == ("folder_pets", dim, 3, ("cat", "dog", "emu"))
  assert t.x_train.shape == (3 * 10, dim) and t.x_test.shape == (3 * 2, dim)  # round(0.2 * 12) = 2
  assert np.bincount(t.y_train).tolist() == [10] * 3 and np.bincount(t.y_test).tolist() == [2] * 3
  assert 0.0 <= t.x_train.min() and t.x_train.max() <= 1.0 and t.x_train.std() > 0.1
  again = _load(f"folder:{folder}", image_size=8, greyscale=greyscale)
  np.testing.assert_array_equal(again.x_test.reshape(6, -1), t.x_test)


def test_every_script_reads_a_folder_task_at_the_configured_size(tmp_path):
  from meta_unsup_rules.configs import paper
  from meta_unsup_rules.evaluation import config_section as settings

  ecfg = paper.get_config().evaluation
  ecfg.update(dict(task=f"folder:{_image_folder(tmp_path / 'pets')}", own_image_size=6, own_greyscale=False))
  assert settings.make_task(ecfg).input_dim == 6 * 6 * 3  # not the defaults' 16 x 16 grey


def test_settings_accept_the_prefixes():
  from meta_unsup_rules.configs import paper
  from meta_unsup_rules.evaluation import config_section as settings
  from meta_unsup_rules.util.config_check import ConfigError

  for task in ("npz:data.npz", "folder:/some/where", "tiny_mnist"):
    cfg = paper.get_config().evaluation
    cfg.task = task
    settings.validate_config(cfg)
  for field, bad in (("task", "npz:"), ("task", "cifar"), ("own_image_size", 0)):
    cfg = paper.get_config().evaluation
    cfg[field] = bad
    with pytest.raises(ConfigError, match=f"evaluation.{field}"):
      settings.validate_config(cfg)


# ----------------------------------------------------------------------------- bad input


def test_bad_npz_files_say_what_was_found(tmp_path):
  x, y = _blobs()
  nan = x.copy()
  nan[5, 1, 2] = np.nan
  cases = [
    (dict(x_train=x, y_train=y), "holds the arrays ['x_train', 'y_train']; expected x_train, y_train"),
    (dict(features=x, labels=y), "holds the arrays ['features', 'labels']"),
    (dict(x=x[:, 0, 0], y=y), "x has shape (60,); [N, D] or [N, H, W, ...]"),
    (dict(x=x, y=y[:, None]), "y has shape (60, 1); [N]"),
    (dict(x=x, y=y[:50]), "x has 60 examples but y has 50 labels"),
    (dict(x=x, y=y + 1), "found the 3 distinct labels 1, 2, 3: missing 0"),
    (dict(x=x, y=np.where(y == 2, 5, y)), "labels 0, 1, 5: missing 2, 3, 4"),
    (dict(x=x, y=y - 1), "out of range (negative) -1"),
    (dict(x=x, y=np.zeros_like(y)), "y has only 1 class (label 0); at least 2 classes are expected"),
    (dict(x=x, y=y + 0.5), "y has dtype float64 with non-integer values"),
    (dict(x=nan, y=y), "x has 1 non-finite values (NaN or ±inf"),
    (dict(x=x.astype(str), y=y), "x has dtype <U"),
    (
      dict(x_train=x, y_train=y, x_test=x[:, 0], y_test=y),
      "x_train's examples have shape (2, 4) but x_test's (4,)",
    ),
    (
      dict(x_train=x, y_train=y, x_test=x, y_test=y * 3),
      "y_test has labels outside y_train's classes 0..2: 3, 6",
    ),
  ]
  for arrays, expected in cases:
    message = _error(_npz(tmp_path, "bad", **arrays))
    assert expected in message, (expected, message)
  assert "does not exist" in _error(f"npz:{tmp_path / 'missing.npz'}")
  (tmp_path / "junk.npz").write_bytes(b"not a zip")
  assert "cannot read" in _error(f"npz:{tmp_path / 'junk.npz'}")


def test_bad_folders_say_what_was_found(tmp_path):
  assert "does not exist" in _error(f"folder:{tmp_path / 'nowhere'}")
  (tmp_path / "empty").mkdir()
  assert "has 0 class sub-folder(s) []" in _error(f"folder:{tmp_path / 'empty'}")
  one = _image_folder(tmp_path / "one", classes=("cat",), per_class=2)
  Image.new("L", (4, 4)).save(one / "loose.png")
  assert "1 class sub-folder(s) ['cat'] and 1 images directly in it" in _error(f"folder:{one}")
  bare = _image_folder(tmp_path / "bare", classes=("a", "b"), per_class=2)
  for f in (bare / "b").glob("*.png"):
    f.unlink()
  message = _error(f"folder:{bare}")
  assert f"class folder {bare / 'b'} has no images (1 other entries)" in message, message
  broken = _image_folder(tmp_path / "broken", classes=("a", "b"), per_class=2)
  (broken / "b" / "zz.png").write_bytes(b"\x89PNG but truncated")
  assert f"cannot read image {broken / 'b' / 'zz.png'}" in _error(f"folder:{broken}")


def test_too_few_support_examples_names_the_class(tmp_path):
  x, y = _blobs(per_class=12)
  t = tasks.make_eval_task(_npz(tmp_path, x=x, y=y))  # 10 train examples per class
  own_data.check_per_class(t, 10, "evaluation.support_per_class")
  with pytest.raises(tasks.DataError) as e:
    own_data.check_per_class(t, 11, "evaluation.support_per_class")
  assert "3 class(es) have fewer train examples than evaluation.support_per_class = 11 " in str(e.value)
  assert "(class 0: 10, class 1: 10, class 2: 10)" in str(e.value)


# ----------------------------------------------------------------------------- scripts.evaluate


@pytest.mark.slow
def test_evaluate_runs_on_an_npz_and_exits_2_on_bad_input(tmp_path):
  x, y = _blobs(per_class=15)
  task = _npz(tmp_path, "blobs", x=x, y=y)
  out = tmp_path / "eval"
  flags = ("--seeds=1", "--inner_steps=4", "--eval_every=4", "--methods=learned,random_init")
  proc = _evaluate(f"--task={task}", *flags, f"--out_dir={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  assert final["task"] == "npz_blobs" and set(final["final"]) == {"learned", "random_init"}
  for name in ("results.csv", "results.json", "accuracy.png"):
    assert (out / name).stat().st_size > 0, name
  assert json.loads((out / "results.json").read_text())["num_test"] == 9
  # Bad input stops in setup, before anything runs: status 2 and the loader's message.
  small = np.array([0] * 15 + [1] * 15 + [2] * 6)
  proc = _evaluate(f"--task={_npz(tmp_path, 'small', x=x[: len(small)], y=small)}", *flags)
  assert proc.returncode == 2, proc.stderr[-3000:]
  expected = "1 class(es) have fewer train examples than evaluation.support_per_class = 10 (class 2: 5)"
  assert expected in proc.stderr, proc.stderr[-3000:]
