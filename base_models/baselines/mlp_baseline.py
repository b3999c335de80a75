"""What every baseline shares: the inputs it is built from and the MLP-baseline base class.

Every baseline exposes the two methods the evaluator drives in lockstep with the learned
rule on the same unlabelled stream, plus what it reports about its own training:

    advance(unlabelled: float32 [k, B, D])   # k more training steps (no-op for k = 0)
    features(x: float32 [N, D]) -> [N, F]    # the representation the readouts are fitted on
    diagnostics() -> dict                    # e.g. first/last loss; {} when there is nothing

Neural baselines subclass `MLPBaseline`: they start from the *same* base-model state as
the learned rule (same seed, input permutation, widths, activation, BN) and read out the
base MLP's top features x^L (BN over the batch passed in, as for the learned rule).

Seed batching (`evaluation.batch_seeds="vmap"`, evaluation/batched.py). `MLPBaseline`
splits both methods into the pure computation they run and the bookkeeping around it, so
that the evaluator can run the computations of all seeds as one vmapped call
(util/batched_calls.py):

    advance_call(unlabelled) -> Call | None  # what advance runs (None: nothing to run)
    absorb(output)                           # takes that call's output (state, histories)
    features_call(x) -> Call                 # what features runs

`advance` is `absorb(advance_call(u).run())` and `features` is `features_call(x).run()`, so
the per-seed path runs exactly these calls. A subclass overrides `advance_call` / `absorb`
(and `features_call` if its features are not the MLP's); a method without them (PCA) is
run per seed.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.util.batched_calls import Call


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


@functools.lru_cache(maxsize=None)
def mlp_features_fn(activation: str, bn_epsilon: float):
  """(state, x) -> x^L: one object per setting, so every seed's features call can be batched."""
  return functools.partial(_mlp_features, activation=activation, bn_epsilon=bn_epsilon)


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

  def advance_call(self, unlabelled) -> Call | None:
    """The pure computation of `advance` (None: this method does not train on the stream)."""
    del unlabelled
    return None

  def absorb(self, output) -> None:
    """Takes the output of `advance_call`'s computation."""
    raise NotImplementedError(f"{type(self).__name__} has no training computation")

  def advance(self, unlabelled) -> None:
    call = self.advance_call(unlabelled)
    if call is not None:
      self.absorb(call.run())

  def features_call(self, x) -> Call:
    # NumPy float32 input is passed as is (no copy), so that seed batching sees the test
    # chunks every seed shares as shared data.
    x = x.astype(jnp.float32) if isinstance(x, jax.Array) else np.asarray(x, np.float32)
    return Call(mlp_features_fn(self.activation, self.bn_epsilon), (self.state, x))

  def features(self, x) -> np.ndarray:
    return np.asarray(self.features_call(x).run())

  def diagnostics(self) -> dict:
    return {}


class RandomInit(MLPBaseline):
  """The untouched base model: what every method starts from."""

  name = "random_init"

  @classmethod
  def build(cls, inputs: BaselineInputs) -> "RandomInit":
    return cls(inputs.state, inputs.base_cfg)
