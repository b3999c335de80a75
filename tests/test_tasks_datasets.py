"""Counts, shapes, value ranges and class balance of every data set (tasks.datasets)."""

import numpy as np
import pytest

from meta_unsup_rules import tasks
from meta_unsup_rules.tasks import alphabet
from meta_unsup_rules.tasks import datasets as ds

EXPECTED = {
  # name: {split: (count, shape, num_classes, per-class counts or None)}
  ("mnist", "train"): (60000, (28, 28), 10, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
  ("mnist", "test"): (10000, (28, 28), 10, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
  ("fashion_mnist", "train"): (60000, (28, 28), 10, [6000] * 10),
  ("fashion_mnist", "test"): (10000, (28, 28), 10, [1000] * 10),
  ("imdb", "train"): (25000, (1000,), 2, [12500, 12500]),
  ("imdb", "test"): (25000, (1000,), 2, [12500, 12500]),
  ("cifar10", "train"): (50000, (32, 32, 3), 10, [5000] * 10),
  ("cifar10", "test"): (10000, (32, 32, 3), 10, [1000] * 10),
  ("omniglot", "train"): (4840, (105, 105), 242, [20] * 242),
  ("imagenet", "train"): (8000, (64, 64, 3), 160, [50] * 160),
  ("imagenet", "test"): (2000, (64, 64, 3), 40, [50] * 40),
  ("imagenet", "all"): (10000, (64, 64, 3), 200, [50] * 200),
  ("two_moons", "train"): (2000, (2,), 2, [1000, 1000]),
  ("two_moons", "test"): (1000, (2,), 2, [500, 500]),
}


@pytest.mark.parametrize("name,split", sorted(EXPECTED))
def test_counts_shapes_ranges_balance(name, split):
  count, shape, num_classes, per_class = EXPECTED[(name, split)]
  d = tasks.load_dataset(name, split)
  assert isinstance(d, tasks.Dataset)
  assert d.x.shape == (count,) + shape
  assert d.x.dtype == np.float32 and d.y.dtype == np.int32
  assert d.num_classes == num_classes == len(d.class_names)
  assert np.bincount(d.y, minlength=num_classes).tolist() == per_class
  if name != "two_moons":
    assert d.x.min() == 0.0 and d.x.max() == 1.0
  assert np.isfinite(d.x).all()


def test_known_statistics():
  assert tasks.load_dataset("mnist").y[:5].tolist() == [5, 0, 4, 1, 9]
  assert tasks.load_dataset("mnist", "test").y[:5].tolist() == [7, 2, 1, 0, 4]
  assert tasks.load_dataset("fashion_mnist").y[:5].tolist() == [9, 0, 0, 3, 0]
  raw = tasks.load_raw("mnist")
  assert raw.x.dtype == np.uint8
  x = raw.x / 255.0
  assert abs(x.mean() - 0.1307) < 1e-3 and abs(x.std() - 0.3081) < 1e-3
  cifar = tasks.load_raw("cifar10").x
  np.testing.assert_allclose(cifar.reshape(-1, 3).mean(0) / 255, [0.4913, 0.4821, 0.4465], atol=2e-3)


def test_imdb_vocabulary_and_labels():
  tr, te = tasks.load_raw("imdb", "train"), tasks.load_raw("imdb", "test")
  vocab = tr.extra["vocab"]
  assert len(vocab) == len(set(vocab)) == 1000 == tr.x.shape[1]
  assert vocab[:5] == ("the", "and", "a", "of", "to")
  assert "br" not in vocab  # <br /> tags are removed, not tokenised
  assert set(np.unique(tr.x)) <= {0, 1} and set(np.unique(te.x)) <= {0, 1}
  assert tr.y.tolist().count(1) == 12500 and te.y.tolist().count(0) == 12500
  # Labels agree with ratings (pos >= 7, neg <= 4) and reviews are not empty.
  assert np.all((tr.extra["rating"] >= 7) == (tr.y == 1))
  assert tr.x.sum(1).min() > 0
  assert ds.tokenize("Don't<br />STOP<br/>now, 2 times!") == ["don't", "stop", "now", "2", "times"]


def test_omniglot_ink_is_bright():
  d = tasks.load_raw("omniglot")
  assert set(np.unique(d.x)) == {0, 255}
  assert (d.x > 0).mean() < 0.2  # strokes are the minority -> ink = 255
  assert len({n.split("/")[0] for n in d.class_names}) == 8


def test_imagenet_class_split_is_fixed_and_disjoint():
  held, train = ds.imagenet_heldout_classes(), ds.imagenet_meta_train_classes()
  assert len(held) == 40 and len(train) == 160
  assert not set(held) & set(train) and set(held) | set(train) == set(range(200))
  assert held.tolist() == list(range(4, 200, 5))
  all_ = tasks.load_raw("imagenet", "all")
  tr, te = tasks.load_raw("imagenet", "train"), tasks.load_raw("imagenet", "heldout")
  assert set(tr.class_names).isdisjoint(te.class_names)
  assert te.class_names == tuple(all_.class_names[i] for i in held)
  assert all_.class_names[0].startswith("n02124075")  # first line of wnids.txt
  assert len(tr.y) + len(te.y) == len(all_.y)


def test_alphabet():
  d = tasks.load_raw("alphabet")
  num_fonts = len(d.extra["font_names"])
  assert num_fonts >= 100, "few fonts: run `bash scripts/install_fonts.sh`"
  assert d.x.shape == (62 * num_fonts, 32, 32) and d.x.dtype == np.uint8
  assert d.num_classes == 62 and d.class_names[10] == "A" and d.class_names[36] == "a"
  assert np.bincount(d.y).tolist() == [num_fonts] * 62
  assert d.x.max() == 255 and (d.x[:, :2].max() == 0) and (d.x[:, :, -2:].max() == 0)  # margin
  # No two fonts render identically, and every glyph has ink.
  per_font = d.x.reshape(num_fonts, -1)
  assert len({row.tobytes() for row in per_font}) == num_fonts
  assert d.x.reshape(len(d.x), -1).max(1).min() > 0


def test_alphabet_renderer_is_deterministic():
  font = sorted(alphabet.find_fonts())[0]
  a, why = alphabet._render_font(str(font))  # pylint: disable=protected-access
  b, _ = alphabet._render_font(str(font))  # pylint: disable=protected-access
  assert why is None and np.array_equal(a, b)
  d = tasks.load_raw("alphabet")
  names = d.extra["font_names"]
  if str(font) in names:
    k = names.index(str(font))
    assert np.array_equal(d.x[62 * k : 62 * (k + 1)], a)


def test_two_moons_seeded():
  a, b = tasks.load_dataset("two_moons"), tasks.load_dataset("two_moons")
  assert np.array_equal(a.x, b.x)
  x, y = ds.two_moons(1000, seed=3)
  x2, _ = ds.two_moons(1000, seed=4)
  assert not np.array_equal(x, x2)
  assert x[y == 0, 1].mean() > x[y == 1, 1].mean()  # upper vs lower moon


def test_cached_arrays_are_read_only_and_shared():
  a, b = tasks.load_raw("mnist"), tasks.load_raw("mnist")
  assert a.x is b.x and not a.x.flags.writeable
  f = tasks.load_dataset("mnist")
  assert f.x.flags.writeable and f.x is not tasks.load_dataset("mnist").x


def test_unknown_names():
  with pytest.raises(ValueError):
    tasks.load_dataset("nope")
  with pytest.raises(ValueError):
    tasks.load_dataset("omniglot", "test")
