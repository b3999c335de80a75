r"""Prototypical-network baselines (Snell et al. 2017): supervised references, not competitors.

protonet           the base MLP trained episodically on the labels of the whole train split
                   (not only the support set), so it is an upper reference. Per inner step
                   `steps_per_inner_step` Adam steps, each on one N-way episode drawn from the
                   train split (k_shot support + n_query queries per class, without
                   replacement where the class has enough examples); loss = cross-entropy of
                   −‖query − prototype‖² over the episode's classes; support and queries
                   take separate BN passes, as the evaluator computes support and test
                   features.
                   It ignores the unlabelled stream's examples but advances in step with it.
protonet_permuted  the same protonet (same key, hence the identical trained network) evaluated
                   on inputs gathered with a fixed random pixel permutation that it never saw
                   in training (Fig. 2 right of the paper: a protonet's features do not
                   transfer to permuted inputs; the learned rule is permutation-invariant).
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
  first_and_last,
  trainable,
  with_trainable,
)
from meta_unsup_rules.tasks import sampling
from meta_unsup_rules.util.batched_calls import Call


def prototypical_loss(feats_support, feats_query, n_way: int):
  """(loss, accuracy) of one episode; rows are class-major (row i has label i // rows-per-class)."""
  protos = jnp.mean(feats_support.reshape(n_way, -1, feats_support.shape[-1]), axis=1)
  logits = -jnp.sum(jnp.square(feats_query[:, None, :] - protos[None]), axis=-1)
  labels = jnp.repeat(jnp.arange(n_way), feats_query.shape[0] // n_way)
  loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
  return loss, jnp.mean(jnp.argmax(logits, axis=1) == labels)


def episode_indices(
  rng: np.random.Generator, class_pools, num_episodes: int, n_way: int, per_class: int
) -> np.ndarray:
  """int32 [num_episodes, n_way·per_class] example indices, class-major within an episode."""
  out = np.empty((num_episodes, n_way, per_class), np.int64)
  for e in range(num_episodes):
    for j, c in enumerate(rng.choice(len(class_pools), n_way, replace=False)):
      out[e, j] = sampling.draw(rng, class_pools[c], per_class)
  return out.reshape(num_episodes, -1).astype(np.int32)


@functools.lru_cache(maxsize=None)
def _protonet_train_fn(activation, bn_epsilon, lr, n_way, k_shot):
  opt = optax.adam(lr)

  def loss_fn(params, state, x):
    x = x.reshape(n_way, -1, x.shape[-1])
    support = x[:, :k_shot].reshape(-1, x.shape[-1])
    query = x[:, k_shot:].reshape(-1, x.shape[-1])
    s = with_trainable(state, params)
    return prototypical_loss(
      mlp.features(s, support, activation, bn_epsilon), mlp.features(s, query, activation, bn_epsilon), n_way
    )

  def train(params, opt_state, state, data, episodes):
    def body(carry, idx):
      params, opt_state = carry
      (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, data[idx])
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), (loss, acc)

    (params, opt_state), (losses, accs) = jax.lax.scan(body, (params, opt_state), episodes)
    return params, opt_state, losses, accs

  return opt, jax.jit(train)


_DEVICE_COPY: list = []  # [(array, its float32 device copy)]: the last labelled split copied


def device_copy(x) -> jax.Array:
  """x as float32 on the device, one copy per array object (the last one asked for is kept).

  Every seed's protonet then holds the very same copy of the train split, which seed
  batching passes once instead of stacking one copy per seed.
  """
  entry = _DEVICE_COPY[0] if _DEVICE_COPY else None
  if entry is None or entry[0] is not x:
    entry = (x, jnp.asarray(x, jnp.float32))
    _DEVICE_COPY[:] = [entry]
  return entry[1]


def non_identity_permutation(key, n: int) -> np.ndarray:
  """A random permutation of n ≥ 2 items that moves at least one (for n = 2: the swap)."""
  if n < 2:
    raise ValueError(f"cannot permute {n} input feature(s)")
  for i in range(100):
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, i), n))
    if np.any(perm != np.arange(n)):
      return perm
  return np.roll(np.arange(n), 1)  # unreachable in practice: P(identity) = 1/n!


class ProtoNet(MLPBaseline):
  """Prototypical network trained episodically on the labelled train split."""

  name = "protonet"
  permute_eval = False

  def __init__(self, key, state: dict, base_cfg, pcfg, x_labelled, y_labelled, num_classes: int):
    super().__init__(state, base_cfg)
    y = np.asarray(y_labelled)
    self.class_pools = sampling.class_pools(y, num_classes)
    if any(len(p) == 0 for p in self.class_pools):
      raise ValueError("protonet: every class needs at least one labelled training example")
    self.n_way = min(int(pcfg.n_way), int(num_classes))
    self.k_shot, self.n_query = int(pcfg.k_shot), int(pcfg.n_query)
    self.steps_per_inner_step = int(pcfg.steps_per_inner_step)
    if min(self.n_way - 1, self.k_shot, self.n_query, self.steps_per_inner_step) < 1:
      raise ValueError(
        f"protonet needs n_way >= 2 (capped at the task's classes), k_shot, n_query and "
        f"steps_per_inner_step >= 1; got {self.n_way}, {self.k_shot}, {self.n_query}, "
        f"{self.steps_per_inner_step}"
      )
    key_train, key_perm = jax.random.split(key)
    self.rng = np.random.default_rng(np.asarray(jax.random.bits(key_train, (4,), jnp.uint32)))
    self.data = device_copy(x_labelled)
    # Drawn for both variants so that their training randomness is identical.
    self.eval_permutation = non_identity_permutation(key_perm, self.data.shape[1])
    self.params = trainable(state)
    self.opt, self._train = _protonet_train_fn(
      self.activation, self.bn_epsilon, float(pcfg.learning_rate), self.n_way, self.k_shot
    )
    self.opt_state = self.opt.init(self.params)
    self.loss_history: list[float] = []
    self.accuracy_history: list[float] = []

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "ProtoNet":
    if inputs.labelled is None or inputs.num_classes is None:
      raise ValueError(f"the {cls.name} baseline needs the labelled train split and num_classes")
    return cls(
      inputs.key,
      inputs.state,
      inputs.base_cfg,
      inputs.settings.protonet,
      inputs.labelled[0],
      inputs.labelled[1],
      inputs.num_classes,
    )

  def advance_call(self, unlabelled) -> Call | None:
    """Draws this call's episodes (from the protonet's own RNG) and returns their training."""
    num = len(unlabelled) * self.steps_per_inner_step
    if num == 0:
      return None
    episodes = episode_indices(self.rng, self.class_pools, num, self.n_way, self.k_shot + self.n_query)
    return Call(self._train, (self.params, self.opt_state, self.state, self.data, jnp.asarray(episodes)))

  def absorb(self, output) -> None:
    self.params, self.opt_state, losses, accs = output
    self.loss_history.extend(np.asarray(losses).tolist())
    self.accuracy_history.extend(np.asarray(accs).tolist())
    self.state = with_trainable(self.state, self.params)

  def features_call(self, x) -> Call:
    if self.permute_eval:
      x = np.asarray(x)[:, self.eval_permutation]
    return super().features_call(x)

  def diagnostics(self) -> dict:
    loss_first, loss_last = first_and_last(self.loss_history)
    return {
      "loss_first": loss_first,
      "loss_last": loss_last,
      "episode_accuracy_last": first_and_last(self.accuracy_history)[1],
      "episodes": len(self.loss_history),
    }


class PermutedProtoNet(ProtoNet):
  """The protonet, trained identically, scored on inputs under a permutation it never saw."""

  name = "protonet_permuted"
  key_name = "protonet"  # its PRNG key is the protonet's: the permutation is the only difference
  permute_eval = True
