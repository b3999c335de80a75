"""What every baseline shares: the inputs it is built from and the MLP-baseline base class.

Every baseline exposes the two methods the evaluator drives in lockstep with the learned
rule on the same unlabelled stream, plus what it reports about its own training:

    advance(unlabelled: float32 [k, B, D])   # k more training steps (no-op for k = 0)
    features(x: float32 [N, D]) -> [N, F]    # the representation the readouts are fitted on
    diagnostics() -> dict                    # e.g. first/last loss; {} when there is nothing

Neural baselines subclass `MLPBaseline`: they start from the *same* base-model state as
the learned rule (same seed, input permutation, widths, activation, BN) and read out the
base MLP's top features x^L (BN over the batch passed in, as for the learned rule).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from base_models import mlp


@dataclasses.dataclass(frozen=True)
class BaselineInputs:
  """Everything a baseline may be built from; each takes what it needs (its `build`).

  `support` (x, y) is the few-shot support set, `labelled` (x, y) the whole labelled train
  split, `data_sample` the first unlabelled chunk (data range and scale).
  """

  key: jax.Array
  state: dict
  input_dim: int
  base_cfg: ml_collections.ConfigDict
  settings: ml_collections.ConfigDict  # cfg.baselines
  data_sample: np.ndarray
  support: tuple | None = None
  num_classes: int | None = None
  labelled: tuple | None = None


@functools.partial(jax.jit, static_argnames=("activation", "bn_epsilon"))
def _mlp_features(state, x, activation, bn_epsilon):
  return mlp.features(state, x, activation, bn_epsilon)


def trainable(state: dict) -> tuple:
  """The forward parameters (W, b) of every layer; V and the permutation stay fixed."""
  return tuple({"w": layer["w"], "b": layer["b"]} for layer in state["layers"])


def with_trainable(state: dict, params: tuple) -> dict:
  layers = tuple(dict(layer, w=p["w"], b=p["b"]) for layer, p in zip(state["layers"], params))
  return dict(state, layers=layers)


def dense_init(key, n_in, n_out, scale=1.0):
  return {"w": scale * jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in), "b": jnp.zeros((n_out,))}


def dense(p, x):
  return x @ p["w"] + p["b"]


def first_and_last(history: list) -> tuple:
  """(first, last) entry of a per-step history; (None, None) before any step."""
  return (history[0], history[-1]) if history else (None, None)


class MLPBaseline:
  """A base-model state and features from its top layer; by default it never trains."""

  name = "base"

  def __init__(self, state: dict, base_cfg):
    self.state = state
    self.activation = str(base_cfg.activation)
    self.bn_epsilon = float(base_cfg.bn_epsilon)

  def advance(self, unlabelled) -> None:
    del unlabelled

  def features(self, x) -> np.ndarray:
    return np.asarray(
      _mlp_features(self.state, jnp.asarray(x, jnp.float32), self.activation, self.bn_epsilon)
    )

  def diagnostics(self) -> dict:
    return {}


class RandomInit(MLPBaseline):
  """The untouched base model: what every method starts from."""

  name = "random_init"

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "RandomInit":
    return cls(inputs.state, inputs.base_cfg)
