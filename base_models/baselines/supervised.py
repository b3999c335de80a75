"""Supervised baseline: the base MLP + a linear softmax head on the labelled support set only.

Trained with Adam (full batch) until its training accuracy reaches `target_accuracy` or
`max_steps`. It sees no unlabelled data, so its curve is flat in the number of inner steps.
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
  trainable,
  with_trainable,
)


@functools.lru_cache(maxsize=None)
def _supervised_fns(activation, bn_epsilon, lr, num_classes):
  opt = optax.adam(lr)

  def logits_fn(params, state, x):
    feats = mlp.features(with_trainable(state, params["body"]), x, activation, bn_epsilon)
    return dense(params["head"], feats)

  def loss_fn(params, state, x, y):
    logits = logits_fn(params, state, x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

  def train(params, opt_state, state, x, y, num_steps):
    def body(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, state, x, y)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), None, length=num_steps)
    acc = jnp.mean(jnp.argmax(logits_fn(params, state, x), axis=1) == y)
    return params, opt_state, losses, acc

  return opt, jax.jit(train, static_argnames=("num_steps",))


class Supervised(MLPBaseline):
  """The base MLP + linear head trained by cross-entropy on the few labelled examples only."""

  name = "supervised"

  def __init__(self, key, state: dict, base_cfg, scfg, x_support, y_support, num_classes: int):
    super().__init__(state, base_cfg)
    params = {
      "body": trainable(state),
      "head": dense_init(key, int(base_cfg.top_width), int(num_classes), 0.1),
    }
    opt, train = _supervised_fns(
      self.activation, self.bn_epsilon, float(scfg.learning_rate), int(num_classes)
    )
    opt_state = opt.init(params)
    x = jnp.asarray(x_support, jnp.float32)
    y = jnp.asarray(y_support, jnp.int32)
    self.steps, self.train_accuracy, self.losses = 0, 0.0, []
    check = max(1, int(scfg.check_every))
    while self.steps < int(scfg.max_steps):
      n = min(check, int(scfg.max_steps) - self.steps)
      params, opt_state, losses, acc = train(params, opt_state, state, x, y, num_steps=n)
      self.steps += n
      self.losses.extend(np.asarray(losses).tolist())
      self.train_accuracy = float(acc)
      if self.train_accuracy >= float(scfg.target_accuracy):
        break
    self.params = params
    self.state = with_trainable(state, params["body"])

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "Supervised":
    if inputs.support is None or inputs.num_classes is None:
      raise ValueError("the supervised baseline needs the labelled support set and num_classes")
    return cls(
      inputs.key,
      inputs.state,
      inputs.base_cfg,
      inputs.settings.supervised,
      inputs.support[0],
      inputs.support[1],
      inputs.num_classes,
    )

  def diagnostics(self) -> dict:
    return {"train_accuracy": self.train_accuracy, "steps": self.steps}
