"""Baselines (base_models/baselines/): each learns what it should, and the registry by name."""

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from meta_unsup_rules import base_models
from meta_unsup_rules.base_models import baselines as bl
from meta_unsup_rules.base_models.baselines import protonet
from meta_unsup_rules.configs import paper
from meta_unsup_rules.evaluation import runner

BASE = ConfigDict(
  dict(
    hidden_widths=(32,),
    top_width=8,
    activation="relu",
    permute_inputs=True,
    w_init_std=0.01,
    b_init_std=0.1,
    bn_epsilon=1e-6,
  )
)


def _settings():
  """A fresh `baselines` section of configs/paper.py (the one source of its values)."""
  return paper.get_config().baselines


def _blobs(rng, counts, dim, spread, centres=None):
  centres = rng.normal(size=(len(counts), dim)) if centres is None else centres
  y = np.repeat(np.arange(len(counts)), counts)
  x = centres[y] + spread * rng.normal(size=(len(y), dim))
  return x.astype(np.float32), y.astype(np.int32), centres


def _state(key=0, input_dim=64):
  return base_models.init(jax.random.PRNGKey(key), input_dim, base_models.layer_widths(BASE), BASE)


# ----------------------------------------------------------------------------- registry


def test_registry_names_order_and_unknown_name():
  assert bl.BASELINES == (
    "random_init",
    "raw_input",
    "pca",
    "vae",
    "supervised",
    "contrastive",
    "hebbian",
    "protonet",
    "protonet_permuted",
  )
  assert all(cls.name == name for name, cls in bl.REGISTRY.items())
  assert bl.key_name("protonet_permuted") == "protonet" and bl.key_name("vae") == "vae"
  with pytest.raises(ValueError, match="unknown baseline"):
    bl.make_baseline(
      "telepathy",
      jax.random.PRNGKey(0),
      _state(),
      64,
      BASE,
      _settings(),
      data_sample=np.zeros((4, 64), np.float32),
    )


# ----------------------------------------------------------------------------- unsupervised


def test_vae_elbo_improves():
  rng = np.random.default_rng(0)
  protos = rng.random((4, 64)) < 0.3
  idx = rng.integers(0, 4, size=(150, 32))
  flips = rng.random((150, 32, 64)) < 0.05
  data = (protos[idx] ^ flips).astype(np.float32)
  vae = bl.VAE(jax.random.PRNGKey(1), _state(), 64, BASE, _settings().vae, data[0])
  assert vae.likelihood == "bernoulli"
  vae.advance(data[:75])
  vae.advance(data[75:])
  h = np.asarray(vae.elbo_history)
  assert h.shape == (150,) and np.all(np.isfinite(h))
  assert h[-15:].mean() > h[:15].mean() + 5.0, (h[:15].mean(), h[-15:].mean())
  assert vae.features(data[0]).shape == (32, 8)


def test_supervised_fits_its_few_labels():
  rng = np.random.default_rng(3)
  x, y = _blobs(rng, (10,) * 5, 64, 1.0)[:2]
  sup = bl.Supervised(jax.random.PRNGKey(0), _state(), BASE, _settings().supervised, x, y, 5)
  assert sup.train_accuracy >= 0.95 and 0 < sup.steps <= 2000
  assert sup.losses[-1] < sup.losses[0]


def test_hebbian_oja_finds_principal_subspace():
  rng = np.random.default_rng(4)
  basis = np.linalg.qr(rng.normal(size=(20, 20)))[0]
  scales = np.array([5.0, 4.0, 3.0] + [0.2] * 17)
  x = (rng.normal(size=(400, 16, 20)) * scales) @ basis.T
  cfg = ConfigDict(dict(BASE.to_dict(), hidden_widths=(), top_width=3))
  state = base_models.init(jax.random.PRNGKey(0), 20, (3,), cfg, permutation=np.arange(20))
  heb = bl.Hebbian(state, cfg, _settings().hebbian)
  heb.advance(x.astype(np.float32))
  w = np.asarray(heb.state["layers"][0]["w"])
  q = np.linalg.qr(w)[0]
  overlap = np.linalg.norm(basis[:, :3].T @ q) ** 2 / 3  # 1 = the top-3 subspace exactly
  assert overlap > 0.95, overlap


def test_contrastive_and_pca_train():
  rng = np.random.default_rng(5)
  x, _, _ = _blobs(rng, (64,) * 4, 64, 0.3)
  stream = x[rng.permutation(len(x))].reshape(8, 32, 64)
  c = bl.Contrastive(jax.random.PRNGKey(0), _state(), BASE, _settings().contrastive, stream[0])
  for _ in range(5):
    c.advance(stream)
  assert np.mean(c.loss_history[-5:]) < np.mean(c.loss_history[:5])
  pca = bl.PCA(jax.random.PRNGKey(0), 64, 8)
  stream = rng.normal(size=(8, 32, 64)) * np.r_[np.arange(10.0, 2.0, -1.0), np.full(56, 0.1)]
  pca.advance(stream[:3])
  pca.advance(stream[3:])
  cov = np.cov(stream.reshape(-1, 64), rowvar=False, bias=True)
  top = np.linalg.eigh(cov)[1][:, ::-1][:, :8]
  np.testing.assert_allclose(np.abs(top.T @ pca.components), np.eye(8), atol=1e-4)
  assert pca.features(stream[0]).shape == (32, 8)


# ----------------------------------------------------------------------------- protonet (references)


def _protonet_cfg(**kw):
  cfg = _settings()
  cfg.protonet.update(kw)
  return cfg


def test_episode_indices_are_class_major_distinct_classes_without_repeats():
  y = np.repeat(np.arange(6), 40)
  pools = [np.flatnonzero(y == c) for c in range(6)]
  idx = protonet.episode_indices(np.random.default_rng(0), pools, 30, 4, 7)
  assert idx.shape == (30, 28) and idx.dtype == np.int32
  labels = y[idx].reshape(30, 4, 7)
  assert np.all(labels == labels[:, :, :1])  # one class per block
  assert all(len(set(ep[:, 0])) == 4 for ep in labels)  # n_way distinct classes
  assert all(len(set(row)) == 28 for row in idx)  # no example twice
  assert len(set(labels[:, :, 0].ravel())) == 6  # every class gets drawn


def test_protonet_loss_falls_and_episode_accuracy_rises():
  rng = np.random.default_rng(1)
  x, y, _ = _blobs(rng, (60,) * 5, 64, 4.0)  # overlapping enough that random init is far from 1
  proto = bl.make_baseline(
    "protonet",
    jax.random.PRNGKey(2),
    _state(),
    64,
    BASE,
    _protonet_cfg(steps_per_inner_step=2),
    data_sample=x[:16],
    num_classes=5,
    labelled=(x, y),
  )
  proto.advance(np.zeros((25, 16, 64), np.float32))  # the stream only sets the step count
  proto.advance(np.zeros((25, 16, 64), np.float32))
  loss, acc = np.asarray(proto.loss_history), np.asarray(proto.accuracy_history)
  assert loss.shape == acc.shape == (100,)
  assert np.all(np.isfinite(loss))
  assert loss[-20:].mean() < 0.5 * loss[:20].mean(), (loss[:20].mean(), loss[-20:].mean())
  assert acc[-20:].mean() > acc[:20].mean() + 0.1, (acc[:20].mean(), acc[-20:].mean())
  assert acc[:20].mean() < 0.9
  # The trained weights are what features() reads.
  moved = np.abs(np.asarray(proto.state["layers"][0]["w"]) - np.asarray(_state()["layers"][0]["w"]))
  assert moved.max() > 1e-3


def test_protonet_permuted_is_the_same_network_on_permuted_inputs():
  rng = np.random.default_rng(3)
  x, y, _ = _blobs(rng, (40,) * 4, 64, 2.0)
  keys = runner.seed_keys(0)
  np.testing.assert_array_equal(keys["protonet"], keys["protonet_permuted"])
  cfg = _protonet_cfg(n_way=3, k_shot=5, n_query=5)
  nets = {
    m: bl.make_baseline(
      m, keys[m], _state(), 64, BASE, cfg, data_sample=x[:16], num_classes=4, labelled=(x, y)
    )
    for m in ("protonet", "protonet_permuted")
  }
  for net in nets.values():
    net.advance(np.zeros((10, 16, 64), np.float32))
  plain, permuted = nets["protonet"], nets["protonet_permuted"]
  np.testing.assert_allclose(plain.loss_history, permuted.loss_history, rtol=1e-5)
  for a, b in zip(jax.tree_util.tree_leaves(plain.state), jax.tree_util.tree_leaves(permuted.state)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  perm = permuted.eval_permutation
  assert sorted(perm.tolist()) == list(range(64)) and np.any(perm != np.arange(64))
  f_plain, f_perm = plain.features(x[:64]), permuted.features(x[:64])
  assert np.abs(f_plain - f_perm).max() > 0.1
  np.testing.assert_allclose(f_perm, plain.features(x[:64][:, perm]), rtol=1e-5, atol=1e-6)


def test_non_identity_permutation_of_two_inputs_is_the_swap():
  for i in range(5):
    np.testing.assert_array_equal(protonet.non_identity_permutation(jax.random.PRNGKey(i), 2), [1, 0])
  with pytest.raises(ValueError, match="cannot permute"):
    protonet.non_identity_permutation(jax.random.PRNGKey(0), 1)


def test_raw_input_features_are_the_inputs_and_ignore_the_stream():
  x = np.random.default_rng(0).random((5, 12)).astype(np.float32)
  raw = bl.REGISTRY["raw_input"](12)
  before = raw.features(x)
  raw.advance(np.ones((3, 4, 12), np.float32))
  np.testing.assert_array_equal(raw.features(x), before)
  np.testing.assert_array_equal(before, x)
  assert raw.features(x.reshape(5, 3, 4)).shape == (5, 12)
