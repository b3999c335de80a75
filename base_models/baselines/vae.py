"""VAE baseline: the base MLP as encoder, trained on the unlabelled stream.

Mean and log-variance are two linear heads on the top features x^L; the decoder is an
MLP mirroring the hidden widths (no BN); Bernoulli likelihood for data in [0, 1]
("auto"), otherwise Gaussian with a learned per-dimension variance; one reparameterised
sample; Adam. Features = x^L, the encoder output the mean head reads.
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

LIKELIHOODS = ("auto", "bernoulli", "gaussian")


def resolve_likelihood(name: str, sample: np.ndarray) -> str:
  if name not in LIKELIHOODS:
    raise ValueError(f"unknown vae.likelihood {name!r}; expected one of {LIKELIHOODS}")
  if name != "auto":
    return name
  return "bernoulli" if float(sample.min()) >= 0.0 and float(sample.max()) <= 1.0 else "gaussian"


def vae_init(key, state: dict, input_dim: int, base_cfg, vcfg) -> dict:
  top = int(base_cfg.top_width)
  latent = int(vcfg.latent_dim) or top
  widths = (latent,) + tuple(int(w) for w in base_cfg.hidden_widths)[::-1] + (input_dim,)
  keys = jax.random.split(key, len(widths) + 1)
  decoder = tuple(
    dense_init(k, a, b, vcfg.decoder_init_scale) for k, a, b in zip(keys[2:], widths[:-1], widths[1:])
  )
  return {
    "encoder": trainable(state),
    "mu": dense_init(keys[0], top, latent, 0.1),
    "logvar": dense_init(keys[1], top, latent, 0.1),
    "decoder": decoder,
    "out_logvar": jnp.zeros((input_dim,)),
  }


def vae_elbo(params, state, x, key, likelihood, activation, bn_epsilon, kl_weight):
  """Per-example ELBO (nats) of a batch, one reparameterised sample; returns (objective, ELBO).

  The objective weighs the KL term by kl_weight; the ELBO is the plain one (weight 1).
  """
  feats = mlp.features(with_trainable(state, params["encoder"]), x, activation, bn_epsilon)
  mu, logvar = dense(params["mu"], feats), dense(params["logvar"], feats)
  z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
  act = mlp.activation_fn(activation)
  h = z
  for i, layer in enumerate(params["decoder"]):
    h = dense(layer, h)
    if i < len(params["decoder"]) - 1:
      h = act(h)
  if likelihood == "bernoulli":
    log_px = -jnp.sum(optax.sigmoid_binary_cross_entropy(h, x), axis=1)
  else:
    lv = params["out_logvar"]
    log_px = -0.5 * jnp.sum(jnp.square(x - h) * jnp.exp(-lv) + lv + jnp.log(2 * jnp.pi), axis=1)
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu) - 1.0 - logvar, axis=1)
  return jnp.mean(log_px - kl_weight * kl), jnp.mean(log_px - kl)


@functools.lru_cache(maxsize=None)
def _vae_train_fn(likelihood, activation, bn_epsilon, kl_weight, lr):
  opt = optax.adam(lr)

  def loss_fn(params, state, x, key):
    objective, elbo = vae_elbo(params, state, x, key, likelihood, activation, bn_epsilon, kl_weight)
    return -objective, elbo

  def train(params, opt_state, state, key, batches):
    def body(carry, x):
      params, opt_state, key = carry
      key, sub = jax.random.split(key)
      (_, elbo), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, sub)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, key), elbo

    (params, opt_state, key), elbos = jax.lax.scan(body, (params, opt_state, key), batches)
    return params, opt_state, key, elbos

  return opt, jax.jit(train)


class VAE(MLPBaseline):
  """VAE with the base MLP as encoder, trained on the unlabelled stream."""

  name = "vae"

  def __init__(self, key, state: dict, input_dim: int, base_cfg, vcfg, data_sample: np.ndarray):
    super().__init__(state, base_cfg)
    self.likelihood = resolve_likelihood(vcfg.likelihood, np.asarray(data_sample))
    key, init_key = jax.random.split(key)
    self.key = key
    self.params = vae_init(init_key, state, input_dim, base_cfg, vcfg)
    self.opt, self._train = _vae_train_fn(
      self.likelihood, self.activation, self.bn_epsilon, float(vcfg.kl_weight), float(vcfg.learning_rate)
    )
    self.opt_state = self.opt.init(self.params)
    self.elbo_history: list[float] = []

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "VAE":
    return cls(
      inputs.key, inputs.state, inputs.input_dim, inputs.base_cfg, inputs.settings.vae, inputs.data_sample
    )

  def advance_call(self, unlabelled) -> Call | None:
    if len(unlabelled) == 0:
      return None
    x = jnp.asarray(unlabelled, jnp.float32)
    return Call(self._train, (self.params, self.opt_state, self.state, self.key, x))

  def absorb(self, output) -> None:
    self.params, self.opt_state, self.key, elbos = output
    self.elbo_history.extend(np.asarray(elbos).tolist())
    self.state = with_trainable(self.state, self.params["encoder"])

  def diagnostics(self) -> dict:
    first, last = first_and_last(self.elbo_history)
    return {"likelihood": self.likelihood, "elbo_first": first, "elbo_last": last}
