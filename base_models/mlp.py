"""The base model: an MLP with batch norm and separate feedback weights.

Per layer l (docs/method.md §2.2, released `LinearBatchNorm`):
    z^l = BN(x^{l-1} W^l) + b^l      (no linear bias, batch statistics, no scale)
    x^l = act(z^l)                   (on every layer, the 32-wide top one included)
The backward (feedback) weights V^l have the shape of W^l; only the learned rule
uses them. x^0 is the flattened input gathered with a fixed random permutation.

The state is a plain pytree:
    {"layers": ({"w": [n_in, n_out], "b": [n_out], "v": [n_in, n_out]}, ...),
     "perm": int32 [input_dim]}
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from meta_unsup_rules.util.config_check import Section

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  "relu": jax.nn.relu,
  "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.2),
  "silu": jax.nn.silu,
  "swish": jax.nn.silu,
  "tanh": jnp.tanh,
  "sigmoid": jax.nn.sigmoid,
  "elu": jax.nn.elu,
  "softplus": jax.nn.softplus,
  "step": lambda z: (z > 0).astype(z.dtype),
  "identity": lambda z: z,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
  return ACTIVATIONS[name]


def layer_widths(cfg) -> tuple[int, ...]:
  """Output widths of every weight layer: the hidden widths, then the top."""
  return tuple(int(w) for w in cfg.hidden_widths) + (int(cfg.top_width),)


def init(
  key: jax.Array,
  input_dim: int,
  widths: Sequence[int],
  cfg,
  permutation: np.ndarray | jax.Array | None = None,
) -> dict:
  """A freshly initialised base model.

  Args:
    key: PRNG key.
    input_dim: number of (flattened) input features.
    widths: output width of every weight layer (hidden..., top).
    cfg: the `base_model` config (w_init_std, b_init_std, permute_inputs).
    permutation: the input permutation; drawn from `key` when None.
  """
  if input_dim < 1 or any(int(w) < 1 for w in widths) or not widths:
    raise ValueError(f"bad base-model shape: input_dim={input_dim}, widths={tuple(widths)}")
  key_perm, key = jax.random.split(key)
  if permutation is None:
    permutation = jax.random.permutation(key_perm, input_dim) if cfg.permute_inputs else jnp.arange(input_dim)
  permutation = jnp.asarray(permutation, jnp.int32)
  if permutation.shape != (input_dim,):
    raise ValueError(f"permutation has shape {permutation.shape}, expected ({input_dim},)")
  layers = []
  fan_in = input_dim
  for width in widths:
    key, kw, kb, kv = jax.random.split(key, 4)
    shape = (fan_in, int(width))
    layers.append(
      {
        "w": cfg.w_init_std * jax.random.truncated_normal(kw, -2.0, 2.0, shape),
        "b": cfg.b_init_std * jax.random.truncated_normal(kb, -2.0, 2.0, (int(width),)),
        "v": cfg.w_init_std * jax.random.truncated_normal(kv, -2.0, 2.0, shape),
      }
    )
    fan_in = int(width)
  return {"layers": tuple(layers), "perm": permutation}


def batch_norm(z: jax.Array, eps: float) -> jax.Array:
  """Standardise each unit over the batch (batch statistics, no scale)."""
  mean = jnp.mean(z, axis=0, keepdims=True)
  var = jnp.mean(jnp.square(z - mean), axis=0, keepdims=True)
  return (z - mean) * jax.lax.rsqrt(var + eps)


def forward(state: dict, inputs: jax.Array, activation: str, bn_epsilon: float = 1e-6):
  """Runs the base model on a batch.

  Args:
    state: base-model state.
    inputs: [batch, input_dim] flattened, *unpermuted* inputs.
  Returns:
    (zs, xs): zs[l-1] = z^l for l = 1..L; xs[l] = x^l for l = 0..L (xs[0] is the
    permuted input). The features are xs[-1].
  """
  act = activation_fn(activation)
  x = jnp.take(inputs, state["perm"], axis=1)
  xs, zs = [x], []
  for layer in state["layers"]:
    z = batch_norm(x @ layer["w"], bn_epsilon) + layer["b"]
    x = act(z)
    zs.append(z)
    xs.append(x)
  return zs, xs


def features(state: dict, inputs: jax.Array, activation: str, bn_epsilon: float = 1e-6):
  """Top-layer features x^L for a batch (BN statistics over that batch)."""
  return forward(state, inputs, activation, bn_epsilon)[1][-1]


def validate_config(base_cfg) -> None:
  """Checks the `base_model` section (raises util.config_check.ConfigError)."""
  s = Section(base_cfg, "base_model")
  s.ints("hidden_widths", 1)
  s.int_at_least("top_width", 1)
  s.one_of("activation", tuple(ACTIVATIONS))
  s.boolean("permute_inputs")
  s.number("w_init_std", lo=0.0)
  s.number("b_init_std", lo=0.0)
  s.positive("bn_epsilon")
