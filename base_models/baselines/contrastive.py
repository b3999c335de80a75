"""Contrastive baseline: SimCLR's NT-Xent between two augmented views of each unlabelled example.

Views: additive Gaussian noise scaled by the data's global std, then random feature
dropout (both valid for permuted/flat inputs), through the base MLP and a 2-layer
projection head; both views share one BN pass; Adam. Features = x^L (before the head).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.base_models.baselines.mlp_baseline import (
  BaselineInputs,
  MLPBaseline,
  dense,
  dense_init,
  first_and_last,
  trainable,
  with_trainable,
)
from meta_unsup_rules.util.batched_calls import Call


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float) -> jax.Array:
  """SimCLR's NT-Xent: each view's positive is its partner among the other 2B−1 examples."""
  z = jnp.concatenate([z1, z2], axis=0)
  z = z * jax.lax.rsqrt(jnp.sum(jnp.square(z), axis=1, keepdims=True) + 1e-12)
  n = z1.shape[0]
  sim = (z @ z.T) / temperature
  sim = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, sim)
  partner = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(sim, partner))


def augment(key, x, noise_std, dropout_rate):
  """Additive Gaussian noise (absolute std), then zero each feature with prob. dropout_rate."""
  k1, k2 = jax.random.split(key)
  noisy = x + noise_std * jax.random.normal(k1, x.shape)
  keep = jax.random.bernoulli(k2, 1.0 - dropout_rate, x.shape)
  return jnp.where(keep, noisy, 0.0)


@functools.lru_cache(maxsize=None)
def _contrastive_train_fn(activation, bn_epsilon, lr, temperature, dropout_rate):
  opt = optax.adam(lr)
  act = mlp.activation_fn(activation)

  def loss_fn(params, state, x, key, noise_std):
    k1, k2 = jax.random.split(key)
    views = jnp.concatenate(
      [augment(k1, x, noise_std, dropout_rate), augment(k2, x, noise_std, dropout_rate)], axis=0
    )
    feats = mlp.features(with_trainable(state, params["body"]), views, activation, bn_epsilon)
    proj = dense(params["proj2"], act(dense(params["proj1"], feats)))
    return nt_xent(proj[: x.shape[0]], proj[x.shape[0] :], temperature)

  def train(params, opt_state, state, key, batches, noise_std):
    def body(carry, x):
      params, opt_state, key = carry
      key, sub = jax.random.split(key)
      loss, grads = jax.value_and_grad(loss_fn)(params, state, x, sub, noise_std)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, key), loss

    (params, opt_state, key), losses = jax.lax.scan(body, (params, opt_state, key), batches)
    return params, opt_state, key, losses

  return opt, jax.jit(train)


class Contrastive(MLPBaseline):
  """SimCLR-style NT-Xent on two augmented views of each unlabelled example."""

  name = "contrastive"

  def __init__(self, key, state: dict, base_cfg, ccfg, data_sample: np.ndarray):
    super().__init__(state, base_cfg)
    top = int(base_cfg.top_width)
    width = int(ccfg.projection_width) or top
    key, k1, k2 = jax.random.split(key, 3)
    self.key = key
    self.params = {
      "body": trainable(state),
      "proj1": dense_init(k1, top, width),
      "proj2": dense_init(k2, width, width),
    }
    self.noise_std = float(ccfg.noise_std) * float(np.std(np.asarray(data_sample)))
    self.opt, self._train = _contrastive_train_fn(
      self.activation,
      self.bn_epsilon,
      float(ccfg.learning_rate),
      float(ccfg.temperature),
      float(ccfg.dropout_rate),
    )
    self.opt_state = self.opt.init(self.params)
    self.loss_history: list[float] = []

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "Contrastive":
    return cls(inputs.key, inputs.state, inputs.base_cfg, inputs.settings.contrastive, inputs.data_sample)

  def advance_call(self, unlabelled) -> Call | None:
    if len(unlabelled) == 0:
      return None
    x, noise_std = jnp.asarray(unlabelled, jnp.float32), jnp.float32(self.noise_std)
    return Call(self._train, (self.params, self.opt_state, self.state, self.key, x, noise_std))

  def absorb(self, output) -> None:
    self.params, self.opt_state, self.key, losses = output
    self.loss_history.extend(np.asarray(losses).tolist())
    self.state = with_trainable(self.state, self.params["body"])

  def diagnostics(self) -> dict:
    first, last = first_and_last(self.loss_history)
    return {"loss_first": first, "loss_last": last}
