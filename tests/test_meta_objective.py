"""Ridge meta-objective against a float64 reference; behaviour at its extremes; readouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from meta_unsup_rules import meta_objective as mo
from meta_unsup_rules.meta_objective import ridge


def cfg(loss="cosine"):
  return ConfigDict(
    dict(loss=loss, ridge_lambda=0.1, center_targets=True, normalize_predictions=True, num_evaluations=1)
  )


def numpy_ridge(f, y, lam):
  a = np.concatenate([f, np.ones((f.shape[0], 1))], 1).astype(np.float64)
  pen = np.full(a.shape[1], lam)
  pen[-1] = 0.0
  return np.linalg.solve(a.T @ a + np.diag(pen), a.T @ y.astype(np.float64))


def test_ridge_matches_float64_reference_with_unpenalised_bias():
  rng = np.random.default_rng(0)
  f = rng.normal(size=(40, 12)).astype(np.float32)
  y = (rng.normal(size=(40, 5)) + 3.0).astype(np.float32)  # a large offset tests the free bias
  w = mo.solve_ridge(jnp.asarray(f), jnp.asarray(y), 0.1)
  np.testing.assert_allclose(w, numpy_ridge(f, y, 0.1), rtol=1e-3, atol=1e-4)
  # Penalising the bias too would give a visibly different solution.
  a = np.concatenate([f, np.ones((40, 1))], 1)
  w_pen = np.linalg.solve(a.T @ a + 0.1 * np.eye(13), a.T @ y)
  assert np.max(np.abs(np.asarray(w) - w_pen)) > 1e-3


def test_centred_targets_have_zero_mean_and_unit_mean_row_norm():
  y = jax.nn.one_hot(jnp.arange(30) % 3, 3)
  c = mo.center_targets(y)
  assert abs(float(jnp.mean(c))) < 1e-6
  np.testing.assert_allclose(jnp.mean(jnp.sum(c**2, 1)), 1.0, rtol=1e-5)


def _batch(num_classes, spc, rng):
  labels = np.tile(np.repeat(np.arange(num_classes), spc), 2)
  return labels, np.eye(num_classes, dtype=np.float32)[labels]


@pytest.mark.parametrize("loss", ["cosine", "released"])
def test_near_minimum_when_features_encode_labels(loss):
  rng = np.random.default_rng(1)
  labels, targets = _batch(5, 10, rng)
  feats = 3 * targets + 0.01 * rng.normal(size=targets.shape).astype(np.float32)
  feats = np.concatenate([feats, rng.normal(size=(len(labels), 27)).astype(np.float32) * 0.01], 1)
  k = len(labels) // 2
  value, stats = mo.ridge_loss(feats[:k], targets[:k], feats[k:], targets[k:], labels[k:], 5, cfg(loss))
  assert float(stats["accuracy"]) == 1.0
  assert float(value) < 0.1


@pytest.mark.parametrize("loss", ["cosine", "released"])
def test_near_chance_when_features_are_noise(loss):
  rng = np.random.default_rng(2)
  accs, values = [], []
  for _ in range(20):
    labels, targets = _batch(10, 10, rng)
    feats = rng.normal(size=(len(labels), 32)).astype(np.float32)
    k = len(labels) // 2
    value, stats = mo.ridge_loss(feats[:k], targets[:k], feats[k:], targets[k:], labels[k:], 10, cfg(loss))
    accs.append(float(stats["accuracy"]))
    values.append(float(value))
  assert np.mean(accs) < 0.2
  assert np.mean(values) > 0.85


def test_released_loss_is_squared_error_plus_ridge_term():
  rng = np.random.default_rng(3)
  labels, targets = _batch(4, 5, rng)
  feats = rng.normal(size=(len(labels), 8)).astype(np.float32)
  k = len(labels) // 2
  value, _ = mo.ridge_loss(feats[:k], targets[:k], feats[k:], targets[k:], labels[k:], 4, cfg("released"))
  ya, yb = (np.asarray(mo.center_targets(t)) for t in (targets[:k], targets[k:]))
  w = numpy_ridge(feats[:k], ya, 0.1)
  pred = feats[k:] @ w[:-1] + w[-1]
  pred /= np.linalg.norm(pred, axis=1, keepdims=True)
  expected = np.sum((pred - yb) ** 2) / k + 0.1 * np.sum(w[:-1] ** 2) / k
  np.testing.assert_allclose(value, expected, rtol=1e-3)


def test_regression_targets_enter_the_loss_but_not_the_accuracy():
  rng = np.random.default_rng(4)
  labels, targets = _batch(3, 6, rng)
  feats = 3 * targets + 0.01 * rng.normal(size=targets.shape).astype(np.float32)
  reg = rng.uniform(-1, 1, (len(labels), 1)).astype(np.float32) * 10  # unpredictable and large
  both = np.concatenate([targets, reg], 1)
  k = len(labels) // 2
  v1, s1 = mo.ridge_loss(feats[:k], targets[:k], feats[k:], targets[k:], labels[k:], 3, cfg())
  v2, s2 = mo.ridge_loss(feats[:k], both[:k], feats[k:], both[k:], labels[k:], 3, cfg())
  assert float(s1["accuracy"]) == float(s2["accuracy"]) == 1.0
  assert float(v2) > float(v1) + 0.1


def test_label_only_targets_ignore_the_regression_columns():
  rng = np.random.default_rng(5)
  labels, targets = _batch(3, 6, rng)
  feats = rng.normal(size=(len(labels), 8)).astype(np.float32)
  k = len(labels) // 2
  args = lambda y: (feats[:k], y[:k], feats[k:], y[k:], labels[k:], 3)
  labels_only = cfg()
  labels_only.targets = "labels"
  v_ref, _ = mo.ridge_loss(*args(targets), cfg())
  values = []
  for scale in (0.1, 10.0):
    reg = rng.uniform(-1, 1, (len(labels), 4)).astype(np.float32) * scale
    both = np.concatenate([targets, reg], 1)
    v_labels, _ = mo.ridge_loss(*args(both), labels_only)
    np.testing.assert_allclose(v_labels, v_ref, rtol=1e-6)
    values.append(float(mo.ridge_loss(*args(both), cfg())[0]))
  assert abs(values[0] - values[1]) > 1e-3  # the paper's targets do depend on them
  bad = cfg()
  bad.targets = "augmentation"
  with pytest.raises(ValueError, match="meta_objective.targets"):
    mo.ridge_loss(*args(targets), bad)


def test_meta_objective_averages_evaluations():
  rng = np.random.default_rng(5)
  labels, targets = _batch(3, 4, rng)
  x = rng.normal(size=(3, len(labels), 6)).astype(np.float32)
  features_fn = lambda b: jnp.tanh(b @ jnp.ones((6, 4)) * jnp.arange(1, 5))
  value, _ = mo.meta_objective(features_fn, x, np.stack([targets] * 3), np.stack([labels] * 3), 3, cfg())
  k = len(labels) // 2
  singles = [
    mo.ridge_loss(features_fn(xe)[:k], targets[:k], features_fn(xe)[k:], targets[k:], labels[k:], 3, cfg())[0]
    for xe in x
  ]
  np.testing.assert_allclose(value, np.mean(singles), rtol=1e-5)


def test_gradient_is_finite_for_constant_features():
  labels, targets = _batch(3, 4, None)
  k = len(labels) // 2

  def f(scale):
    feats = jnp.zeros((len(labels), 5)) * scale
    return mo.ridge_loss(feats[:k], targets[:k], feats[k:], targets[k:], labels[k:], 3, cfg())[0]

  assert bool(jnp.isfinite(jax.grad(f)(1.0)))


def test_logistic_regression_readout():
  rng = np.random.default_rng(6)
  centres = rng.normal(size=(4, 10)) * 5
  y = np.repeat(np.arange(4), 10)
  x = centres[y] + rng.normal(size=(40, 10))
  yt = np.repeat(np.arange(4), 50)
  xt = centres[yt] + rng.normal(size=(200, 10))
  assert mo.LogisticRegression().fit(x, y, 4).accuracy(xt, yt) > 0.97
  assert mo.ridge_accuracy(x, y, xt, yt, 4) > 0.97
  noise_acc = (
    mo.LogisticRegression().fit(rng.normal(size=(40, 10)), y, 4).accuracy(rng.normal(size=(200, 10)), yt)
  )
  assert noise_acc < 0.45


# ------------------------------------------------------------- target groups centred on their own


def _targets(rng, k=40, c=5, r=4):
  labels = rng.integers(0, c, k)
  aug = rng.uniform(-1, 1, size=(k, r))
  return np.concatenate([np.eye(c)[labels], aug], 1).astype(np.float32), labels


def test_per_group_centring_gives_each_group_unit_energy_and_the_weight_its_share():
  y, _ = _targets(np.random.default_rng(0))
  for weight in (0.0, 0.3, 1.0, 2.0):
    out = np.asarray(mo.center_targets_per_group(jnp.asarray(y), 5, weight))
    labels, aug = out[:, :5], out[:, 5:]
    assert abs(labels.mean()) < 1e-6 and abs(np.mean(np.sum(labels**2, 1)) - 1) < 1e-5
    assert abs(aug.mean()) < 1e-6
    assert np.mean(np.sum(aug**2, 1)) == pytest.approx(weight**2, rel=1e-5, abs=1e-7)


def test_augmentation_weight_zero_is_the_labels_only_loss():
  rng = np.random.default_rng(1)
  ya, _ = _targets(rng)
  yb, lb = _targets(rng)
  fa, fb = rng.normal(size=(40, 12)).astype(np.float32), rng.normal(size=(40, 12)).astype(np.float32)
  args = (jnp.asarray(fa), jnp.asarray(ya), jnp.asarray(fb), jnp.asarray(yb), jnp.asarray(lb), 5)
  for loss in ("cosine", "released"):
    labels_only = cfg(loss)
    labels_only.targets = "labels"
    zero = cfg(loss)
    zero.update(dict(target_centring="per_group", augmentation_weight=0.0))
    a, sa = mo.ridge_loss(*args, labels_only)
    b, sb = mo.ridge_loss(*args, zero)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(sa["accuracy"]), float(sb["accuracy"]))
  # A weight above zero changes the loss; the joint centring (a stored config's) is another loss again.
  half = cfg()
  half.update(dict(target_centring="per_group", augmentation_weight=0.3))
  joint = cfg()
  assert float(mo.ridge_loss(*args, half)[0]) != pytest.approx(float(mo.ridge_loss(*args, zero)[0]), abs=1e-4)
  assert float(mo.ridge_loss(*args, joint)[0]) != pytest.approx(
    float(mo.ridge_loss(*args, half)[0]), abs=1e-4
  )


def test_a_config_without_the_centring_fields_centres_jointly():
  """Runs stored before the setting: their loss is the joint centring's."""
  y, _ = _targets(np.random.default_rng(2))
  np.testing.assert_array_equal(
    np.asarray(ridge.centre(jnp.asarray(y), 5, cfg())), np.asarray(mo.center_targets(jnp.asarray(y)))
  )


def test_a_weight_needs_per_group_centring():
  from meta_unsup_rules.util.config_check import ConfigError

  c = cfg()
  c.update(
    dict(
      targets="labels_and_augmentation",
      samples_per_class=10,
      reduction="mean",
      target_centring="joint",
      augmentation_weight=0.3,
    )
  )
  with pytest.raises(ConfigError, match="augmentation_weight"):
    ridge.validate_config(c)
  c.target_centring = "per_group"
  ridge.validate_config(c)
