"""Resizing, grey conversion and augmentation targets (tasks.image_ops)."""

import numpy as np
import pytest

from meta_unsup_rules.tasks import image_ops


def _centroid(img):
  ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
  m = img.sum()
  return (xs * img).sum() / m, (ys * img).sum() / m


def _orientation_deg(img):
  """Major-axis angle, CCW as displayed (rows point down), in (-90, 90]."""
  cx, cy = _centroid(img)
  ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
  dx, dy = xs - cx, -(ys - cy)  # y up
  mu20, mu02, mu11 = (img * dx * dx).sum(), (img * dy * dy).sum(), (img * dx * dy).sum()
  return np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02))


def test_shift_moves_a_bright_pixel_by_the_reported_amount():
  img = np.zeros((64, 16, 16), np.float32)
  img[:, 7, 8] = 1.0
  rng = np.random.default_rng(0)
  out, targets = image_ops.augment(rng, img, max_shift=3.0, max_rotation=0.0, max_noise=0.0)
  assert targets.shape == (64, 4)
  assert np.all(np.abs(targets[:, :2]) <= 1) and np.all(targets[:, 2:] == 0)
  assert np.abs(targets[:, :2]).max() > 0.5  # shifts actually vary
  for k in range(64):
    cx, cy = _centroid(out[k])
    assert cx == pytest.approx(8 + 3.0 * targets[k, 0], abs=1e-4)
    assert cy == pytest.approx(7 + 3.0 * targets[k, 1], abs=1e-4)
    assert out[k].sum() == pytest.approx(1.0, abs=1e-5)  # bilinear keeps the mass inside


def test_integer_shift_is_exact():
  img = np.zeros((1, 16, 16), np.float32)
  img[0, 4, 5] = 1.0
  out = image_ops.affine_warp(img, np.array([0.0]), np.array([2.0]), np.array([-3.0]))
  assert out[0, 1, 7] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_rotation_is_recovered():
  ys, xs = np.mgrid[:32, :32]
  c = 15.5
  bar = np.exp(-((xs - c) ** 2) / (2 * 6.0**2) - ((ys - c) ** 2) / (2 * 1.5**2))  # horizontal
  img = np.repeat(bar[None].astype(np.float32), 40, axis=0)
  rng = np.random.default_rng(1)
  out, targets = image_ops.augment(rng, img, max_shift=0.0, max_rotation=40.0, max_noise=0.0)
  assert np.all(targets[:, [0, 1, 3]] == 0) and np.abs(targets[:, 2]).max() > 0.5
  for k in range(40):
    assert _orientation_deg(out[k]) == pytest.approx(40.0 * targets[k, 2], abs=1.0)
  # Sign convention: +90 degrees turns "right of centre" into "above the centre".
  dot = np.zeros((1, 9, 9), np.float32)
  dot[0, 4, 7] = 1
  up = image_ops.affine_warp(dot, np.array([90.0]), np.zeros(1), np.zeros(1))
  assert up[0, 1, 4] == pytest.approx(1.0, abs=1e-5)


def test_noise_std_is_reported():
  img = np.zeros((32, 16, 16), np.float32)
  rng = np.random.default_rng(2)
  out, targets = image_ops.augment(rng, img, max_shift=0.0, max_rotation=0.0, max_noise=0.5)
  assert np.all((targets[:, 3] >= 0) & (targets[:, 3] <= 1))
  np.testing.assert_allclose(out.reshape(32, -1).std(1), 0.5 * targets[:, 3], rtol=0.2, atol=0.01)


def test_same_seed_same_augmentation():
  img = np.random.default_rng(3).random((8, 16, 16), dtype=np.float32)
  a = image_ops.augment(np.random.default_rng(5), img, 2.0, 15.0, 0.1)
  b = image_ops.augment(np.random.default_rng(5), img, 2.0, 15.0, 0.1)
  c = image_ops.augment(np.random.default_rng(6), img, 2.0, 15.0, 0.1)
  assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
  assert not np.array_equal(a[0], c[0])


def test_colour_images_are_warped_per_channel():
  img = np.zeros((1, 8, 8, 3), np.float32)
  img[0, 2, 3] = [1.0, 0.5, 0.25]
  out = image_ops.affine_warp(img, np.zeros(1), np.array([1.0]), np.array([2.0]))
  np.testing.assert_allclose(out[0, 4, 4], [1.0, 0.5, 0.25])


def test_bilinear_halving_is_2x2_mean_and_area_resize():
  x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
  want = x.reshape(5, 14, 2, 14, 2).astype(np.float32).mean((2, 4))
  np.testing.assert_allclose(image_ops.resize(x, 14, "bilinear"), want, rtol=1e-5, atol=1e-3)
  np.testing.assert_allclose(image_ops.resize(x, 14, "area"), want, rtol=1e-5, atol=1e-3)
  c = np.random.default_rng(1).random((3, 64, 64, 3)).astype(np.float32)
  np.testing.assert_allclose(
    image_ops.resize(c, 16, "area"), c.reshape(3, 16, 4, 16, 4, 3).mean((2, 4)), atol=1e-5
  )
  # Non-integer factor: constant images stay constant, mass per area is preserved.
  const = np.full((2, 105, 105), 7.0, np.float32)
  np.testing.assert_allclose(image_ops.resize(const, 16, "area"), 7.0, rtol=1e-5)
  for m in ("area", "bilinear"):
    a = image_ops.resize_matrix(105, 16, m)
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-5)
    assert (a >= 0).all()


def test_grey_is_bt601_luma():
  rgb = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.uint8)
  np.testing.assert_allclose(image_ops.to_grey(rgb)[0, 0], [0.299 * 255, 0.587 * 255, 0.114 * 255], rtol=1e-5)
