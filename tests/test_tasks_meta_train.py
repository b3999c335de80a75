"""Meta-training task distribution: permutations, architectures, labelled/unlabelled batches."""

import collections
import dataclasses

import numpy as np
import pytest
from scipy import stats

from meta_unsup_rules import tasks
from meta_unsup_rules.configs import paper
from meta_unsup_rules.tasks import meta_train as mt


def _cfg(**kw):
  """paper.py's task section (the one source of its values) with `kw` changed."""
  cfg = paper.get_config().task
  for k, v in kw.items():
    setattr(cfg, k, v)
  return cfg


def _task(seed, **kw):
  return tasks.sample_meta_train_task(np.random.default_rng(seed), _cfg(**kw))


def test_paper_config_fields():
  cfg = _cfg()
  assert tuple(cfg.datasets) == ("imagenet", "alphabet", "cifar10")
  assert cfg.image_size == 16 and cfg.greyscale and cfg.samples_per_class == 10
  assert (cfg.depth_min, cfg.depth_max, cfg.width_min, cfg.width_max, cfg.top_width) == (2, 5, 64, 512, 32)


def test_permutation_bijection_fixed_within_task_different_across_tasks():
  rng = np.random.default_rng(0)
  seen = []
  for _ in range(6):
    t = tasks.sample_meta_train_task(rng, _cfg())
    assert t.permutation.dtype == np.int32 and t.permutation.shape == (t.input_dim,)
    assert np.array_equal(np.sort(t.permutation), np.arange(t.input_dim))
    before = t.permutation.copy()
    t.unlabelled_batches(rng, 2, 8)
    t.labelled_batches(rng, 1)
    assert np.array_equal(t.permutation, before)
    seen.append(t.permutation)
  assert all(not np.array_equal(seen[i], seen[j]) for i in range(6) for j in range(i))


def test_same_seed_same_task_and_batches():
  a, b, c = _task(7), _task(7), _task(8)
  assert a.dataset == b.dataset and a.layer_widths == b.layer_widths
  assert np.array_equal(a.classes, b.classes) and np.array_equal(a.permutation, b.permutation)
  assert not np.array_equal(a.permutation, c.permutation)
  ua = a.unlabelled_batches(np.random.default_rng(1), 3, 16)
  ub = b.unlabelled_batches(np.random.default_rng(1), 3, 16)
  assert np.array_equal(ua, ub)
  la = a.labelled_batches(np.random.default_rng(2), 2)
  lb = b.labelled_batches(np.random.default_rng(2), 2)
  assert all(np.array_equal(p, q) for p, q in zip(la, lb))
  lc = a.labelled_batches(np.random.default_rng(3), 2)
  assert not np.array_equal(la[0], lc[0])


@pytest.mark.parametrize("dataset", ["imagenet", "alphabet", "cifar10", "omniglot"])
def test_labelled_batches_are_class_balanced(dataset):
  t = _task(1, datasets=(dataset,), dataset_weights=(1.0,))
  spc, c = t.samples_per_class, t.num_classes
  k = spc * c
  x, y, labels = t.labelled_batches(np.random.default_rng(4), 3)
  assert x.shape == (3, 2 * k, 256) and x.dtype == np.float32
  assert y.shape == (3, 2 * k, c + 4) and labels.shape == (3, 2 * k) and labels.dtype == np.int32
  for s in range(3):
    for half in (labels[s, :k], labels[s, k:]):
      assert np.bincount(half, minlength=c).tolist() == [spc] * c
    assert not np.array_equal(labels[s, :k], np.sort(labels[s, :k]))  # shuffled
  np.testing.assert_array_equal(y[..., :c], np.eye(c)[labels])  # one-hot in {0, 1}
  assert np.all(np.abs(y[..., c : c + 3]) <= 1) and np.all((y[..., -1] >= 0) & (y[..., -1] <= 1))


def test_labelled_and_unlabelled_examples_are_disjoint():
  cfg = _cfg(augment=False, datasets=("imagenet",), dataset_weights=(1.0,))
  t = tasks.sample_meta_train_task(np.random.default_rng(5), cfg)
  assert t.num_regression_targets == 0
  src = t.source
  for cls in range(src.num_classes):
    lab, unl = set(src.labelled[cls]), set(src.unlabelled[cls])
    assert not lab & unl and lab | unl == set(np.flatnonzero(src.y == cls))
    assert len(lab) == 20
  flat = src.x.reshape(len(src.x), -1)
  row_of = {flat[i].tobytes(): i for i in range(len(flat))}
  u = t.unlabelled_batches(np.random.default_rng(6), 4, 64).reshape(-1, 256)
  x, y, labels = t.labelled_batches(np.random.default_rng(7), 2)
  u_idx = {row_of[r.tobytes()] for r in u}
  l_idx = [row_of[r.tobytes()] for r in x.reshape(-1, 256)]
  allowed_u = set(np.concatenate([src.unlabelled[c] for c in t.classes]))
  assert u_idx <= allowed_u and len(u_idx) == 256  # epoch-wise: no repeats in 1 epoch
  assert set(l_idx) <= set(np.concatenate([src.labelled[c] for c in t.classes]))
  np.testing.assert_array_equal(t.classes[labels.reshape(-1)], src.y[l_idx])  # labels match
  first = x[0].reshape(-1, 256)
  k = t.samples_per_class * t.num_classes
  a = {row_of[r.tobytes()] for r in first[:k]}
  b = {row_of[r.tobytes()] for r in first[k:]}
  assert len(a) == len(b) == k and not a & b  # batches a and b are distinct


def test_inputs_and_augmentation_statistics():
  t = _task(3)
  u = t.unlabelled_batches(np.random.default_rng(0), 4, 128)
  assert u.shape == (4, 128, 256) and u.dtype == np.float32
  assert -1.0 < u.min() and u.max() < 2.0 and 0.0 < u.mean() < 1.0
  plain = _task(3, augment=False).unlabelled_batches(np.random.default_rng(0), 4, 128)
  assert plain.min() >= 0 and plain.max() <= 1


def test_architecture_sampler_bounds_and_distribution():
  rng = np.random.default_rng(0)
  cfg = _cfg(width_grid=0)
  archs = [mt.sample_layer_widths(rng, cfg) for _ in range(4000)]
  depths = collections.Counter(len(a) - 1 for a in archs)
  assert set(depths) == {2, 3, 4, 5}
  assert all(abs(depths[d] / 4000 - 0.25) < 0.03 for d in depths)
  assert all(a[-1] == 32 for a in archs)
  assert all(len(set(a[:-1])) == 1 for a in archs)  # one width per task
  w = np.array([a[0] for a in archs])
  assert w.min() >= 64 and w.max() <= 512
  lo, hi = np.log(64), np.log(512)
  assert abs(np.log(w).mean() - (lo + hi) / 2) < 0.04
  assert stats.kstest((np.log(w) - lo) / (hi - lo), "uniform").pvalue > 1e-3
  assert stats.kstest((w - 64) / 448, "uniform").pvalue < 1e-6  # not uniform in width
  grid = mt.width_grid_values(_cfg())
  assert grid.tolist() == [64, 86, 116, 156, 210, 283, 380, 512]
  gw = collections.Counter(mt.sample_layer_widths(rng, _cfg())[0] for _ in range(4000))
  assert set(gw) == set(grid.tolist()) and all(abs(n / 4000 - 1 / 8) < 0.025 for n in gw.values())
  per_layer = [mt.sample_layer_widths(rng, _cfg(per_layer_widths=True, width_grid=0)) for _ in range(200)]
  assert any(len(set(a[:-1])) > 1 for a in per_layer)


def test_dataset_mixture_weights():
  rng = np.random.default_rng(0)
  cfg = _cfg(datasets=("imagenet", "cifar10"), dataset_weights=(3.0, 1.0))
  names = collections.Counter(tasks.sample_meta_train_task(rng, cfg).dataset for _ in range(400))
  assert abs(names["imagenet"] / 400 - 0.75) < 0.07
  with pytest.raises(ValueError):
    tasks.sample_meta_train_task(rng, _cfg(dataset_weights=(1.0,)))


def test_class_subsets_and_colour_option():
  t = _task(2, datasets=("imagenet",), dataset_weights=(1.0,), num_classes_choices=(2, 5))
  assert t.num_classes in (2, 5) and len(set(t.classes.tolist())) == t.num_classes
  assert t.classes.max() < 160
  c = _task(2, datasets=("cifar10",), dataset_weights=(1.0,), greyscale=False)
  assert c.input_dim == 768
  assert c.unlabelled_batches(np.random.default_rng(0), 1, 4).shape == (1, 4, 768)


def test_task_description_round_trips_without_image_arrays():
  # What a checkpoint stores: plain values and two small arrays, the source re-loaded.
  t = _task(4)
  d = t.to_dict()
  assert sorted(d) == sorted(f.name for f in dataclasses.fields(t) if f.name != "source")
  assert all(isinstance(v, (str, int, float, bool, list, np.ndarray)) for v in d.values())
  t2 = mt.MetaTrainTask.from_dict(d, mt.meta_train_source(t.dataset, _cfg()))
  assert t2.source is t.source and t2.layer_widths == t.layer_widths
  for f in ("classes", "permutation"):
    a, b = getattr(t, f), getattr(t2, f)
    assert a.dtype == b.dtype and np.array_equal(a, b)
  x1, x2 = (u.labelled_batches(np.random.default_rng(0), 2) for u in (t, t2))
  for a, b in zip(x1, x2):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="not a permutation"):
    mt.MetaTrainTask.from_dict({**d, "permutation": np.zeros_like(d["permutation"])}, t.source)
  with pytest.raises(ValueError, match="given the source"):
    mt.MetaTrainTask.from_dict({**d, "dataset": "mnist"}, t.source)


@pytest.mark.parametrize("dataset", ["imagenet", "cifar10", "alphabet"])
def test_source_images_match_raw_images_and_labels(dataset):
  from meta_unsup_rules.tasks import image_ops  # pylint: disable=g-import-not-at-top

  src = mt.meta_train_source(dataset, _cfg())
  raw = tasks.load_raw(*mt.META_TRAIN_SOURCES[dataset])
  idx = np.random.default_rng(0).choice(len(raw.y), 50, replace=False)
  want = image_ops.resize(image_ops.to_grey(raw.x[idx]), 16, "area") / 255.0
  np.testing.assert_allclose(src.x[idx], want, atol=1e-5)
  assert np.array_equal(src.y, raw.y) and src.x.shape == (len(raw.y), 16, 16)


# ------------------------------------------------------------------- batches a and b never overlap


def _shipped_config_names() -> list[str]:
  """Every config the package ships (a new one is covered without editing this test)."""
  import pkgutil

  from meta_unsup_rules import configs

  return sorted(m.name for m in pkgutil.iter_modules(configs.__path__))


def _shipped_task_sections():
  import importlib

  out = {}
  for name in _shipped_config_names():
    out[name] = importlib.import_module(f"meta_unsup_rules.configs.{name}").get_config().task
  return out


def _labelled_indices(task, rng, steps, monkeypatch):
  """The source indices of `labelled_batches`' rows: [steps, 2K]."""
  seen = []
  original = mt.MetaTrainTask._prepare

  def recording(self, rng_, idx):
    seen.append(np.asarray(idx))
    return original(self, rng_, idx)

  monkeypatch.setattr(mt.MetaTrainTask, "_prepare", recording)
  task.labelled_batches(rng, steps)
  monkeypatch.undo()
  return seen[0].reshape(steps, -1)


@pytest.mark.parametrize("config_name", _shipped_config_names())
def test_batches_a_and_b_are_disjoint_on_every_dataset_of_every_config(config_name, monkeypatch):
  section = _shipped_task_sections()[config_name]
  for dataset in tuple(section.datasets):
    cfg = section.copy_and_resolve_references()
    cfg.datasets, cfg.dataset_weights = (dataset,), (1.0,)
    rng = np.random.default_rng(0)
    task = tasks.sample_meta_train_task(rng, cfg)
    source = task.source
    smallest = min(len(source.labelled[c]) for c in task.classes)
    assert smallest >= 2, f"{dataset}: a class with one labelled example cannot give a and b their own"
    idx = _labelled_indices(task, rng, 8, monkeypatch)
    k = idx.shape[1] // 2
    for step in idx:
      assert not set(step[:k]) & set(step[k:]), f"{config_name}/{dataset}: a and b share examples"


def test_without_disjoint_batches_omniglot_a_and_b_come_from_the_same_examples(monkeypatch):
  """What runs stored before the setting did (8 labelled examples per Omniglot class)."""
  rng = np.random.default_rng(0)
  task = tasks.sample_meta_train_task(
    rng, _cfg(datasets=("omniglot",), dataset_weights=(1.0,), disjoint_batches=False)
  )
  assert all(len(task.source.labelled[c]) < 2 * task.samples_per_class for c in task.classes)
  idx = _labelled_indices(task, rng, 4, monkeypatch)
  k = idx.shape[1] // 2
  assert all(set(step[:k]) & set(step[k:]) for step in idx)


def test_disjoint_halves_keep_every_class_balanced():
  rng = np.random.default_rng(3)
  pool = np.arange(50, 58)  # 8 labelled examples, as Omniglot's
  out = mt._from_disjoint_halves(rng, pool, 200, 10)
  assert out.shape == (200, 2, 10) and np.isin(out, pool).all()
  assert all(not set(s[0]) & set(s[1]) for s in out)
  counts = np.bincount(out.reshape(-1) - 50, minlength=8)  # every example used, none favoured
  assert counts.min() > 0.8 * counts.mean()


def test_a_stored_task_without_the_field_keeps_drawing_as_before():
  task = _task(0)
  d = task.to_dict()
  del d["disjoint_batches"]
  assert mt.MetaTrainTask.from_dict(d, task.source).disjoint_batches is False
