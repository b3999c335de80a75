"""Hebbian baseline: a hand-designed local rule, Oja's subspace rule on every layer at once.

ΔW = η (x yᵀ − W yᵀy)/B with y = x W, where x is the layer's input centred and scaled so
that the batch's mean squared norm is 1 (makes η scale-free and stable for η < 1).
Biases and V are left untouched (BN after every layer makes W's scale irrelevant).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.base_models.baselines.mlp_baseline import BaselineInputs, MLPBaseline
from meta_unsup_rules.util.batched_calls import Call


def oja_step(state: dict, x: jax.Array, lr: float, activation: str, bn_epsilon: float) -> dict:
  """One step of Oja's subspace rule on every layer (inputs from the current forward pass)."""
  _, xs = mlp.forward(state, x, activation, bn_epsilon)
  layers = []
  for layer, inp in zip(state["layers"], xs[:-1]):
    inp = inp - jnp.mean(inp, axis=0, keepdims=True)
    inp = inp * jax.lax.rsqrt(jnp.mean(jnp.sum(jnp.square(inp), axis=1)) + 1e-8)
    w = layer["w"]
    y = inp @ w
    batch = inp.shape[0]
    dw = (inp.T @ y - w @ (y.T @ y)) / batch
    layers.append(dict(layer, w=w + lr * dw))
  return dict(state, layers=tuple(layers))


@functools.lru_cache(maxsize=None)
def _hebbian_train_fn(activation, bn_epsilon, lr):
  def train(state, batches):
    def body(s, x):
      return oja_step(s, x, lr, activation, bn_epsilon), None

    return jax.lax.scan(body, state, batches)[0]

  return jax.jit(train)


class Hebbian(MLPBaseline):
  """Layer-wise Oja subspace rule: a local, hand-designed Hebbian update."""

  name = "hebbian"

  def __init__(self, state: dict, base_cfg, hcfg):
    super().__init__(state, base_cfg)
    self._train = _hebbian_train_fn(self.activation, self.bn_epsilon, float(hcfg.learning_rate))

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "Hebbian":
    return cls(inputs.state, inputs.base_cfg, inputs.settings.hebbian)

  def advance_call(self, unlabelled) -> Call | None:
    if len(unlabelled) == 0:
      return None
    return Call(self._train, (self.state, jnp.asarray(unlabelled, jnp.float32)))

  def absorb(self, output) -> None:
    self.state = output
