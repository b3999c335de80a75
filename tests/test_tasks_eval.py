"""Evaluation tasks: shapes, class-balanced support sets, test splits, determinism."""

import pickle

import numpy as np
import pytest

from meta_unsup_rules import tasks
from meta_unsup_rules.tasks import datasets as ds
from meta_unsup_rules.tasks import eval_tasks

EXPECTED = {  # name: (input_dim, num_classes, train size, test size)
  "tiny_mnist": (196, 10, 60000, 10000),
  "tiny_fashion_mnist": (196, 10, 60000, 10000),
  "mnist": (784, 10, 60000, 10000),
  "fashion_mnist": (784, 10, 60000, 10000),
  "imdb": (1000, 2, 25000, 25000),
  "imagenet_heldout": (256, 10, 400, 100),
  "imagenet_val": (256, 10, 400, 100),
  "alphabet_val": (256, 10, None, None),  # 10 characters x the usable fonts (3 of 4 / 1 of 4)
  "omniglot_val": (256, 40, 560, 240),  # 40 characters x 14 / 6 drawers
  "two_moons": (2, 2, 2000, 1000),
}


def test_task_list():
  assert tasks.EVAL_TASKS == tuple(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_eval_task(name):
  dim, c, n_train, n_test = EXPECTED[name]
  t = tasks.make_eval_task(name)
  if name == "alphabet_val":
    fonts = len(ds.load_raw("alphabet").extra["font_names"])
    n_test = 10 * len(range(3, fonts, 4))
    n_train = 10 * fonts - n_test
  assert (t.name, t.input_dim, t.num_classes) == (name, dim, c)
  rng = np.random.default_rng(0)
  u = t.unlabelled_batches(rng, 3, 32)
  assert u.shape == (3, 32, dim) and u.dtype == np.float32
  xs, ys = t.support_set(rng, 10)
  assert xs.shape == (10 * c, dim) and ys.dtype == np.int32
  assert np.bincount(ys, minlength=c).tolist() == [10] * c
  xt, yt = t.test_set()
  assert xt.shape == (n_test, dim) and yt.shape == (n_test,)
  assert len(t.x_train) == n_train
  if name != "two_moons":
    assert xt.min() >= 0 and xt.max() <= 1
  # Same seed -> same draws; support examples come from the train split.
  xs2, ys2 = t.support_set(np.random.default_rng(0).spawn(1)[0], 10)
  a = t.support_set(np.random.default_rng(5), 10)
  b = t.support_set(np.random.default_rng(5), 10)
  assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
  assert not np.array_equal(a[0], xs2)
  sub_x, sub_y = t.test_set(max_examples=50)
  assert sub_x.shape == (50, dim) and np.array_equal(sub_y, t.test_set(max_examples=50)[1])


def test_tiny_mnist_is_bilinear_halving():
  tiny, full = tasks.make_eval_task("tiny_mnist"), tasks.make_eval_task("mnist")
  want = full.x_test[:100].reshape(100, 14, 2, 14, 2).mean((2, 4)).reshape(100, 196)
  np.testing.assert_allclose(tiny.x_test[:100], want, atol=1e-6)
  assert np.array_equal(tiny.y_test, tasks.load_raw("mnist", "test").y)


def test_imagenet_heldout_uses_only_heldout_classes_and_disjoint_parts():
  t = tasks.make_eval_task("imagenet_heldout")
  held = tasks.load_raw("imagenet", "heldout")
  assert t.class_names == held.class_names[:10]
  assert set(t.class_names).isdisjoint(tasks.load_raw("imagenet", "train").class_names)
  assert np.bincount(t.y_train).tolist() == [40] * 10
  assert np.bincount(t.y_test).tolist() == [10] * 10
  rows = {r.tobytes() for r in t.x_train}
  assert not any(r.tobytes() in rows for r in t.x_test)
  all40 = tasks.make_eval_task("imagenet_heldout", num_classes=40)
  assert all40.num_classes == 40 and len(all40.x_test) == 400


def test_unlabelled_stream_is_an_epoch_shuffle():
  t = tasks.make_eval_task("two_moons")
  u = t.unlabelled_batches(np.random.default_rng(0), 10, 200).reshape(-1, 2)
  assert len({r.tobytes() for r in u}) == 2000


def test_eval_task_pickles_by_reference():
  t = tasks.make_eval_task("mnist")
  blob = pickle.dumps(t)
  assert len(blob) < 10000 and pickle.loads(blob) is t
  with pytest.raises(ValueError):
    tasks.make_eval_task("cifar")
  assert eval_tasks.IMAGENET_HELDOUT_TRAIN_PER_CLASS == 40 and ds.IMAGENET_HELDOUT_MOD == 5
