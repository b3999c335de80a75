"""Base model: shapes for many architectures, batch norm, permutation, initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from meta_unsup_rules import base_models

CFG = ConfigDict(
  dict(
    hidden_widths=(128,) * 4,
    top_width=32,
    activation="relu",
    permute_inputs=True,
    w_init_std=0.01,
    b_init_std=0.1,
    bn_epsilon=1e-6,
  )
)

ARCHS = [(2, 1, 64), (3, 600, 196), (4, 37, 784), (5, 128, 1000), (2, 64, 196)]


ARCH_ACTIVATION = [arch + ("relu",) for arch in ARCHS] + [
  (2, 17, 64, a) for a in sorted(base_models.ACTIVATIONS) if a != "relu"
]


@pytest.mark.parametrize("depth,width,input_dim,activation", ARCH_ACTIVATION)
def test_forward_shapes(depth, width, input_dim, activation):
  widths = (width,) * depth + (32,)
  state = base_models.init(jax.random.PRNGKey(depth), input_dim, widths, CFG)
  x = jax.random.uniform(jax.random.PRNGKey(1), (8, input_dim))
  zs, xs = base_models.forward(state, x, activation)
  assert len(zs) == depth + 1 and len(xs) == depth + 2
  assert xs[0].shape == (8, input_dim)
  for z, xo, n in zip(zs, xs[1:], widths):
    assert z.shape == (8, n) and xo.shape == (8, n)
    assert bool(jnp.all(jnp.isfinite(xo)))
  np.testing.assert_allclose(xs[-1], base_models.activation_fn(activation)(zs[-1]), rtol=1e-6)


def test_layer_is_batchnorm_plus_offset():
  state = base_models.init(jax.random.PRNGKey(0), 50, (20, 32), CFG)
  x = jax.random.normal(jax.random.PRNGKey(1), (64, 50))
  zs, _ = base_models.forward(state, x, "relu")
  pre = zs[0] - state["layers"][0]["b"]
  np.testing.assert_allclose(jnp.mean(pre, 0), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.var(pre, 0), 1.0, rtol=1e-3)


def test_permutation_is_applied_to_inputs():
  state = base_models.init(jax.random.PRNGKey(0), 30, (10, 32), CFG)
  perm = np.asarray(state["perm"])
  assert sorted(perm.tolist()) == list(range(30)) and not np.array_equal(perm, np.arange(30))
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 30))
  identity = dict(state, perm=jnp.arange(30))
  _, xs = base_models.forward(state, x, "relu")
  _, xs_manual = base_models.forward(identity, x[:, perm], "relu")
  np.testing.assert_array_equal(xs[-1], xs_manual[-1])


def test_init_statistics_and_explicit_permutation():
  state = base_models.init(jax.random.PRNGKey(0), 400, (300, 32), CFG, permutation=np.arange(400)[::-1])
  w, b, v = (np.asarray(state["layers"][0][k]) for k in ("w", "b", "v"))
  # truncated at 2σ: std = 0.88σ, |x| <= 2σ
  assert abs(w.std() - 0.0088) < 5e-4 and np.abs(w).max() <= 0.02 + 1e-7
  assert abs(b.std() - 0.088) < 0.015 and np.abs(b).max() <= 0.2 + 1e-6
  assert not np.array_equal(w, v)
  np.testing.assert_array_equal(state["perm"], np.arange(400)[::-1])


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match="permutation"):
    base_models.init(jax.random.PRNGKey(0), 10, (4, 32), CFG, permutation=np.arange(9))
  with pytest.raises(ValueError, match="activation"):
    base_models.activation_fn("gelu-ish")
