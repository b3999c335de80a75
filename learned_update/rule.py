"""θ and the UnsupervisedUpdate (docs/method.md §2.2, the released `MoreLocalWeightUpdate*`).

One application of the rule to a base model:
  1. forward pass on an unlabelled batch → z^l, x^l;
  2. the top-down signal d^L = top_delta(x^L);
  3. top-down over l = L..0: h^l = compute_h(x^l, z^l, d^l, b^l, W^l, W^{l+1});
     δ^l = d^l ⊙ σ(z^l) + lin(h^l); d^{l-1} = V^l δ^l, normalised per unit;
  4. for every layer: ΔW^l from 12 terms mixed by learned weights, Δb^l from h^l;
  5. P ← (1 − lr)·P − lr·ΔP for W, b and (identical updates) V — `step_mode = "released"`;
     "tangential" takes the step of learned_update/step_geometry.py instead.

Tensors inside the rule are [units, batch, channels]. θ is a plain dict pytree.

`implementation` (config): "reference" builds the conv + batch norm + ReLU blocks from
autodiffed primitives; "fused" uses the same function with a hand-written VJP
(learned_update/fused.py; tests/test_rule_fused.py checks the two agree).

Length (~470 lines): the whole released architecture (top-delta net, h network, the 12 ΔW
terms and their merge, the bias change) stays in one module so it can be checked line by
line against the released code; its sub-networks share the config and the layouts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.learned_update import fused, nn, step_geometry
from meta_unsup_rules.util import config_compat
from meta_unsup_rules.util.config_check import Section

# The 15 low-rank readouts Linear(h → num_grad_channels). "_top" readouts act on
# the first h argument of a low-rank product, "_bottom" ones on the second.
LOW_RANK_TERMS = (
  "weight_readout_0",
  "weight_readout_rbf",
  "weight_readout_1",
  "lin_upper_symm",
  "lin_lower_symm",
  "sqr_upper_symm",
  "sqr_lower_symm",
)
PSD_TERMS = ("lin_upper_psd",)
READOUT_NAMES = tuple(
  sorted([f"{n}_top" for n in LOW_RANK_TERMS + PSD_TERMS] + [f"{n}_bottom" for n in LOW_RANK_TERMS])
)
# The 12 ΔW terms, in the sorted order the released merge stacks them in.
WEIGHT_TERMS = tuple(
  sorted(
    [
      "w_base",
      "large_decay",
      "decorr_x",
      "hebb",
      "0_order",
      "rbf",
      "1_order",
      "lin_upper_symm",
      "lin_upper_psd",
      "lin_lower_symm",
      "sqr_upper_symm",
      "sqr_lower_symm",
    ]
  )
)
NUM_STAT_CHANNELS = 8  # 4 statistics of incoming + 4 of outgoing weights
NUM_UNIT_FEATURES = 4  # x, z, sin(unit id), cos(unit id)


# --------------------------------------------------------------------------- θ


def _init_weight_change(key, cfg) -> dict:
  keys = jax.random.split(key, len(READOUT_NAMES))
  return {
    "readouts": {
      name: nn.init_linear(k, cfg.compute_h_size, cfg.num_grad_channels)
      for name, k in zip(READOUT_NAMES, keys)
    },
    "merge": {
      "w": jnp.full((len(WEIGHT_TERMS),), cfg.mixing_init, jnp.float32),
      "b": jnp.zeros((), jnp.float32),
    },
  }


def init_theta(key: jax.Array, cfg) -> dict:
  """A freshly initialised θ for the `rule` config."""
  k = iter(jax.random.split(key, 16))
  n_top, hs, td = cfg.top_width, cfg.compute_h_size, cfg.top_delta_size
  top_delta = {
    "conv_in": nn.init_conv(next(k), cfg.top_delta_kernel, 1, td),
    "bn_in": nn.init_bn(td),
    "mix": [
      {"conv": nn.init_conv(kk, cfg.kernel_size, n_top, n_top), "bn": nn.init_bn(n_top)}
      for kk in jax.random.split(next(k), 2)
    ],
    "layers": [
      {"conv": nn.init_conv(kk, cfg.kernel_size, td, td), "bn": nn.init_bn(td)}
      for kk in jax.random.split(next(k), cfg.top_delta_layers)
    ],
    "out": nn.init_conv(next(k), cfg.kernel_size, td, cfg.delta_dim),
  }
  n_in_channels = NUM_STAT_CHANNELS + 1 + NUM_UNIT_FEATURES + cfg.delta_dim

  def block(kk, c_in):
    k1, k2, k3 = jax.random.split(kk, 3)
    return {
      "conv": nn.init_conv(k1, cfg.kernel_size, c_in, hs),
      "bn": nn.init_bn(hs),
      "unit_convs": [
        {"conv": nn.init_conv(k2, cfg.kernel_size, hs, hs), "bn": nn.init_bn(hs)},
        {"conv": nn.init_conv(k3, cfg.kernel_size, hs, hs), "bn": nn.init_bn(hs)},
      ],
    }

  block_keys = jax.random.split(next(k), 1 + cfg.compute_h_layers)
  compute_h = {
    "bn_in": nn.init_bn(NUM_UNIT_FEATURES + cfg.delta_dim),
    "blocks": [block(block_keys[0], n_in_channels)] + [block(kk, hs) for kk in block_keys[1:]],
  }
  theta = {
    "top_delta": top_delta,
    "compute_h": compute_h,
    "to_delta": nn.init_linear(next(k), hs, cfg.delta_dim),
    "bias_readout": nn.init_linear(next(k), hs, 1),
    "forward": _init_weight_change(next(k), cfg),
  }
  if not cfg.identical_updates:
    theta["backward"] = _init_weight_change(next(k), cfg)
  return theta


def theta_param_count_formula(cfg) -> dict[str, int]:
  """θ's parameter count per sub-network, computed from the config alone."""
  conv = lambda k, i, o: k * i * o + o
  lin = lambda i, o: i * o + o
  n_top, hs, td, kk = cfg.top_width, cfg.compute_h_size, cfg.top_delta_size, cfg.kernel_size
  top = (
    conv(cfg.top_delta_kernel, 1, td)
    + td
    + 2 * (conv(kk, n_top, n_top) + n_top)
    + cfg.top_delta_layers * (conv(kk, td, td) + td)
    + conv(kk, td, cfg.delta_dim)
  )
  c_in = NUM_STAT_CHANNELS + 1 + NUM_UNIT_FEATURES + cfg.delta_dim
  unit = 2 * (conv(kk, hs, hs) + hs)
  h = (
    (NUM_UNIT_FEATURES + cfg.delta_dim)
    + (conv(kk, c_in, hs) + hs + unit)
    + cfg.compute_h_layers * (conv(kk, hs, hs) + hs + unit)
  )
  change = len(READOUT_NAMES) * lin(hs, cfg.num_grad_channels) + len(WEIGHT_TERMS) + 1
  counts = {
    "top_delta": top,
    "compute_h": h,
    "to_delta": lin(hs, cfg.delta_dim),
    "bias_readout": lin(hs, 1),
    "forward": change,
  }
  if not cfg.identical_updates:
    counts["backward"] = change
  return counts


def param_count(tree) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


# ------------------------------------------------------------------ sub-networks


def _conv_bn_relu(p, x, axis, eps, operand_dtype=None):
  return jax.nn.relu(nn.batch_norm(p["bn"], nn.conv1d(p["conv"], x, axis, operand_dtype), eps))


IMPLEMENTATIONS = ("reference", "fused")
FEEDBACKS = ("separate", "transpose")
TOP_DELTAS = ("learned", "zero")


def active_terms(cfg) -> tuple[str, ...]:
  """The ΔW terms that enter the merge (config `rule.terms`; stored configs: all 12)."""
  return tuple(config_compat.read(cfg, "rule.terms"))


def _unit_mixing(cfg) -> bool:
  """Config `rule.unit_mixing`: the unit-axis convolutions and the sin/cos unit IDs."""
  return bool(config_compat.read(cfg, "rule.unit_mixing"))


def _is_fused(cfg) -> bool:
  """Config `implementation` is "fused" (configs saved before the field existed run the reference)."""
  return config_compat.read(cfg, "rule.implementation") == "fused"


def _block_fn(cfg):
  """conv + batch norm + ReLU of config `implementation`: autodiff (reference) or custom VJP."""
  return fused.conv_bn_relu if _is_fused(cfg) else _conv_bn_relu


def top_delta(theta_td: dict, x_top: jax.Array, cfg) -> jax.Array:
  """The learned top-down signal from the top features [batch, n_top] → [n_top, batch, delta_dim]."""
  eps, block = cfg.theta_bn_epsilon, _block_fn(cfg)
  act = x_top.T[:, :, None]  # [n_top, B, 1]
  act = block({"conv": theta_td["conv_in"], "bn": theta_td["bn_in"]}, act, 1, eps)
  act = jnp.transpose(act, (2, 1, 0))  # [td, B, n_top]: mixes top units
  for p in theta_td["mix"]:
    act = block(p, act, 1, eps)
  act = jnp.transpose(act, (2, 1, 0))  # [n_top, B, td]
  for p in theta_td["layers"]:
    act = block(p, act, 1, eps)
  return nn.conv1d(theta_td["out"], act, 1)


def weight_stats(w: jax.Array | None, axis: int) -> list[jax.Array]:
  """mean|w|, rms, mean, std of w over `axis`: one [units] vector each."""
  if w is None:
    return []
  mean = jnp.mean(w, axis=axis)
  var = jnp.mean(jnp.square(w - jnp.expand_dims(mean, axis)), axis=axis)
  return [
    jnp.mean(jnp.abs(w), axis=axis),
    jnp.sqrt(jnp.mean(jnp.square(w), axis=axis) + 1e-6),
    mean,
    jnp.sqrt(var + 1e-8),
  ]


def compute_h(theta_h: dict, x, z, d, bias, w_bot, w_top, cfg) -> jax.Array:
  """Per-unit hidden state h^l: [units, batch, compute_h_size].

  Args:
    x, z: [batch, units] post- and pre-activations (z = x for the input layer).
    d: [units, batch, delta_dim] incoming top-down signal.
    bias: [units] the layer's offset (zeros for the input layer).
    w_bot: incoming weights [n_in, units] or None; w_top: outgoing [units, n_out] or None.
  """
  eps = cfg.theta_bn_epsilon
  batch, units = x.shape
  unit_mixing = _unit_mixing(cfg)
  unit_id = jnp.linspace(0.0, 4.0 * math.pi, units)
  # Without unit mixing the unit-ID channels hold zeros: θ keeps its shapes, no unit is told apart.
  no_id = jnp.zeros(units)
  sin_id, cos_id = (jnp.sin(unit_id), jnp.cos(unit_id)) if unit_mixing else (no_id, no_id)
  per_unit = jnp.stack(
    [
      x.T,
      z.T,
      jnp.broadcast_to(sin_id[:, None], (units, batch)),
      jnp.broadcast_to(cos_id[:, None], (units, batch)),
    ],
    axis=-1,
  )
  act = nn.batch_norm(theta_h["bn_in"], jnp.concatenate([per_unit, d], axis=-1), eps)
  stats = weight_stats(w_bot, 0) + weight_stats(w_top, 1)
  if w_bot is None or w_top is None:  # edge layer: duplicate the one matrix's statistics
    stats = stats + stats
  stats = jnp.stack(stats, axis=-1)  # [units, 8]
  stats = stats * jax.lax.rsqrt(jnp.mean(jnp.square(stats)) + 1e-6)
  act = jnp.concatenate(
    [
      jnp.broadcast_to(stats[:, None, :], (units, batch, NUM_STAT_CHANNELS)),
      jnp.broadcast_to(bias[:, None, None], (units, batch, 1)),
      act,
    ],
    axis=-1,
  )
  # h_dtype: the convolutions' operand precision; accumulation and everything else stay float32.
  operands, conv_bn_relu = jnp.dtype(cfg.h_dtype), _block_fn(cfg)
  for block in theta_h["blocks"]:
    act = conv_bn_relu(block, act, 1, eps, operands)  # along the batch axis
    if not unit_mixing:
      continue  # no convolution along the unit axis: each unit's h from its own statistics
    residual = act
    for p in block["unit_convs"]:
      residual = conv_bn_relu(p, residual, 0, eps, operands)  # along the unit axis
    act = act + residual
  return act


def _normalize_columns(t: jax.Array, eps: float) -> jax.Array:
  """Per-column (per receptive field) normalisation of a [n_in, n_out] matrix."""
  return t * jax.lax.rsqrt(eps + jnp.mean(jnp.square(t), axis=0, keepdims=True))


def _standardize_over_batch(x: jax.Array) -> jax.Array:
  centred = x - jnp.mean(x, axis=0, keepdims=True)
  return centred * jax.lax.rsqrt(jnp.mean(jnp.square(centred), axis=0, keepdims=True) + 1e-6)


def _centre_and_scale(x: jax.Array) -> jax.Array:
  """Centred over the batch and scaled by one number for all units (small-variance units stay small)."""
  centred = x - jnp.mean(x, axis=0, keepdims=True)
  return centred * jax.lax.rsqrt(jnp.mean(jnp.square(centred)) + 1e-6)


def _linear_fn(cfg):
  """Linear readouts of h of config `implementation`: autodiff (reference) or custom VJP."""
  return fused.linear if _is_fused(cfg) else nn.linear


def _readouts(theta_change: dict, h: jax.Array, linear=nn.linear) -> dict[str, jax.Array]:
  """Every readout of one h ([units, batch, 64] → [units, batch*channels]), in one matmul."""
  names = READOUT_NAMES
  w = jnp.concatenate([theta_change["readouts"][n]["w"] for n in names], axis=1)
  b = jnp.concatenate([theta_change["readouts"][n]["b"] for n in names], axis=0)
  out = linear({"w": w, "b": b}, h)
  units, batch, _ = h.shape
  c = out.shape[-1] // len(names)
  return {n: out[..., i * c : (i + 1) * c].reshape(units, batch * c) for i, n in enumerate(names)}


def _low_rank(r_bottom: jax.Array, r_top: jax.Array, batch: int, channels: int) -> jax.Array:
  """mean over channels of r_bottom[c]ᵀ r_top[c] / batch: [n_bottom, n_top]."""
  return (r_bottom @ r_top.T) / (batch * channels)


HEBB_TERMS = ("released", "oja", "oja_centred")


def weight_change_terms(w, upper_r, lower_r, upper_x, lower_x, batch, channels, hebb_term="released"):
  """The 12 candidate weight changes for W [n_in, n_out] (before merging).

  `hebb_term` ([ours], config `rule.hebb_term`): "released" correlates the standardised
  inputs with the layer's standardised outputs after BN and the activation; "oja" is the
  negated direction of Oja's subspace rule, xᵀy − U yᵀy with U = Ŵ/√n_in (unit columns)
  and y = x U the linear outputs: Hebbian growth plus the decorrelation between units that
  the released term lacks (base_models/baselines/hebbian.py is the hand-designed rule), on
  inputs standardised per unit like the released term's; "oja_centred" the same on inputs
  centred and scaled by one number, as Oja's baseline does (small-variance inputs stay small).
  """
  w_hat = w * jax.lax.rsqrt(jnp.mean(jnp.square(w), axis=0, keepdims=True) + 1e-6)
  terms = {"w_base": w_hat, "large_decay": jnp.square(w_hat) * jnp.sign(w_hat)}
  ux = _standardize_over_batch(upper_x)
  corr = (ux.T @ ux) / batch / math.sqrt(ux.shape[1])
  cw = w_hat @ corr
  terms["decorr_x"] = cw * jax.lax.rsqrt(jnp.mean(jnp.square(cw) + 1e-8))
  lx = _standardize_over_batch(lower_x)
  if hebb_term == "released":
    terms["hebb"] = -(lx.T @ ux) / batch
  else:
    xin = lx if hebb_term == "oja" else _centre_and_scale(lower_x)
    u = w_hat / math.sqrt(w.shape[0])
    y = xin @ u
    terms["hebb"] = -(xin.T @ y - u @ (y.T @ y)) / batch

  def low_rank(name, top_r, bottom_r):
    return _low_rank(bottom_r[f"{name}_bottom"], top_r[f"{name}_top"], batch, channels)

  terms["0_order"] = low_rank("weight_readout_0", upper_r, lower_r)
  terms["rbf"] = jnp.exp(-jnp.square(w_hat)) * low_rank("weight_readout_rbf", upper_r, lower_r)
  terms["1_order"] = w_hat * low_rank("weight_readout_1", upper_r, lower_r)
  for kind in ("lin", "sqr"):
    if kind == "lin":
      w_kind, sign = w_hat, None
    else:
      w_kind, sign = jnp.sqrt(1.0 + jnp.square(w_hat)) - 1.0, jnp.sign(w_hat)
    for source, r in (("upper", upper_r), ("lower", lower_r)):
      structures = ["symm"] + (["psd"] if kind == "lin" and source == "upper" else [])
      for structure in structures:
        name = f"{kind}_{source}_{structure}"
        if structure == "symm":
          lateral = low_rank(name, r, r)
          lateral = (lateral + lateral.T) / math.sqrt(2.0)
          lateral = lateral * (1.0 - jnp.eye(lateral.shape[0], dtype=lateral.dtype))
        else:
          top = r[f"{name}_top"]
          lateral = _low_rank(top, top, batch, channels)
        lateral = lateral / math.sqrt(lateral.shape[0])
        cw = w_kind @ lateral if source == "upper" else lateral @ w_kind
        terms[name] = cw if sign is None else cw * sign
  return terms


def merge_weight_change(theta_change: dict, terms: dict, cfg) -> jax.Array:
  """Learned mix of the normalised terms, projection, renormalisation, anti-collapse."""
  w_hat = terms["w_base"]
  eps = cfg.normalize_epsilon
  n = len(WEIGHT_TERMS)  # the released family's constant, also when `rule.terms` leaves some out
  mix = theta_change["merge"]["w"]
  # The terms that enter (`rule.terms`): one left out adds nothing, and its mixing weight (kept in
  # θ, so shapes stay loadable across settings) gets no gradient.
  used = [i for i, k in enumerate(WEIGHT_TERMS) if k in active_terms(cfg)]
  if _is_fused(cfg):
    # The same mix as a sum: no [n_in, n_out, 12] stack in memory and no matrix-vector product.
    change = sum(mix[i] * _normalize_columns(terms[WEIGHT_TERMS[i]], eps) for i in used)
  else:
    stacked = jnp.stack([_normalize_columns(terms[WEIGHT_TERMS[i]], eps) for i in used], axis=-1)
    change = stacked @ mix[jnp.array(used)]
  change = (change + theta_change["merge"]["b"]) / n
  # Only updates that are perpendicular to w or grow it: no collapse towards zero.
  projection = jax.nn.relu(jnp.mean(change * w_hat))
  change = (change - w_hat * projection) / math.sqrt(n)
  change = _normalize_columns(change, eps)
  return change - w_hat * cfg.anti_collapse_scale


def bias_change(theta: dict, upper_h: jax.Array, linear=nn.linear) -> jax.Array:
  change = jnp.mean(linear(theta["bias_readout"], upper_h)[..., 0], axis=1)  # [units]
  change = change - jnp.minimum(jnp.mean(change), 0.0)  # biases may not all grow without bound
  return change * jax.lax.rsqrt(0.5 + jnp.mean(jnp.square(change)))


# ------------------------------------------------------------------ the update


def compute_hidden_states(theta, state, zs, xs, cfg) -> list[jax.Array]:
  """h^l for l = 0..L (index = layer), propagating the learned error top-down."""
  layers = state["layers"]
  num_layers = len(layers)
  linear = _linear_fn(cfg)
  if config_compat.read(cfg, "rule.top_delta") == "learned":
    d = top_delta(theta["top_delta"], xs[-1], cfg)
  else:  # "zero": no top-down signal enters the top layer
    d = jnp.zeros((xs[-1].shape[1], xs[-1].shape[0], cfg.delta_dim), xs[-1].dtype)
  feedback = "v" if config_compat.read(cfg, "rule.feedback") == "separate" else "w"
  hs = [None] * (num_layers + 1)
  for l in range(num_layers, -1, -1):
    x = xs[l]
    z = zs[l - 1] if l > 0 else x
    bias = layers[l - 1]["b"] if l > 0 else jnp.zeros((x.shape[1],), x.dtype)
    w_bot = layers[l - 1]["w"] if l > 0 else None
    w_top = layers[l]["w"] if l < num_layers else None
    h = compute_h(theta["compute_h"], x, z, d, bias, w_bot, w_top, cfg)
    hs[l] = h
    if l > 0:
      delta = d * jax.nn.sigmoid(z.T)[:, :, None] + linear(theta["to_delta"], h)
      units, batch, channels = delta.shape
      # Down through V (separate feedback weights) or through W itself ("transpose").
      d = (layers[l - 1][feedback] @ delta.reshape(units, batch * channels)).reshape(-1, batch, channels)
      d = d * jax.lax.rsqrt(jnp.mean(jnp.square(d), axis=-1, keepdims=True) + 1e-6)
  return hs


def compute_updates(theta: dict, state: dict, inputs: jax.Array, cfg, base_cfg) -> list[dict]:
  """ΔW, ΔV and Δb for every layer from one unlabelled batch."""
  zs, xs = mlp.forward(state, inputs, base_cfg.activation, base_cfg.bn_epsilon)
  hs = compute_hidden_states(theta, state, zs, xs, cfg)
  batch = inputs.shape[0]
  channels = cfg.num_grad_channels
  linear = _linear_fn(cfg)
  readouts = {
    name: [_readouts(theta[name], h, linear) for h in hs]
    for name in (("forward",) if cfg.identical_updates else ("forward", "backward"))
  }
  changes = []
  for l, layer in enumerate(state["layers"], start=1):

    def change_for(name, w, l=l):
      terms = weight_change_terms(
        w, readouts[name][l], readouts[name][l - 1], xs[l], xs[l - 1], batch, channels, cfg.hebb_term
      )
      return merge_weight_change(theta[name], terms, cfg)

    dw = change_for("forward", layer["w"])
    dv = dw if cfg.identical_updates else change_for("backward", layer["v"])
    changes.append({"w": dw, "v": dv, "b": bias_change(theta, hs[l], linear)})
  return changes


def apply_updates(state: dict, changes: list[dict], lr: float) -> dict:
  """P ← (1 − lr)·P − lr·ΔP: a fixed step with built-in decay (released optimiser)."""
  layers = tuple(
    {k: (1.0 - lr) * layer[k] - lr * change[k] for k in ("w", "b", "v")}
    for layer, change in zip(state["layers"], changes)
  )
  return {"layers": layers, "perm": state["perm"]}


def inner_step(theta: dict, state: dict, inputs: jax.Array, cfg, base_cfg) -> dict:
  """One application of the UnsupervisedUpdate: φ_{t+1} = U(φ_t, x_t; θ)."""
  return apply_changes(state, compute_updates(theta, state, inputs, cfg, base_cfg), cfg)


def apply_changes(state: dict, changes: list[dict], cfg) -> dict:
  """The step of config `step_mode`: released (apply_updates) or tangential."""
  if cfg.step_mode == "tangential":
    return step_geometry.apply_tangential(state, changes, cfg.angular_step, cfg.inner_lr)
  return apply_updates(state, changes, cfg.inner_lr)


H_DTYPES = ("float32", "bfloat16")


def validate_config(rule_cfg) -> None:
  """Checks the `rule` section (raises util.config_check.ConfigError)."""
  s = Section(rule_cfg, "rule")
  for name in (
    "top_width",
    "top_delta_size",
    "top_delta_kernel",
    "kernel_size",
    "compute_h_size",
    "delta_dim",
    "num_grad_channels",
  ):
    s.int_at_least(name, 1)
  s.int_at_least("top_delta_layers", 0)
  s.int_at_least("compute_h_layers", 0)
  s.positive("normalize_epsilon")
  s.positive("theta_bn_epsilon")
  s.number("mixing_init")
  s.number("anti_collapse_scale", lo=0.0)
  s.positive("inner_lr")
  s.one_of("step_mode", step_geometry.STEP_MODES)
  s.number("angular_step", lo=0.0)
  s.boolean("identical_updates")
  s.one_of("hebb_term", HEBB_TERMS)
  s.one_of("h_dtype", H_DTYPES)
  s.boolean("checkpoint_unroll")
  if "implementation" in rule_cfg:  # configs saved before the switch existed run the reference
    s.one_of("implementation", IMPLEMENTATIONS)
  terms = s.value("terms")
  if (
    not isinstance(terms, (list, tuple))
    or not terms
    or not set(terms) <= set(WEIGHT_TERMS)
    or (len(set(terms)) != len(terms))
  ):
    s.fail("terms", f"a non-empty tuple of distinct ΔW terms among {WEIGHT_TERMS}")
  s.one_of("feedback", FEEDBACKS)
  s.boolean("unit_mixing")
  s.one_of("top_delta", TOP_DELTAS)
