"""Truncated unrolls of the inner loop and their meta-gradients.

`meta_gradient` applies the rule for k steps (`lax.scan`, `jax.checkpoint` on the
body so memory stays flat in k), evaluates the meta-objective on each of the k new
states, reduces them (mean or sum, config `meta_objective.reduction`) and returns
the gradient with respect to θ. The base-model state that goes in is treated as a
constant: this is truncated backprop, and the state coming out starts the next
truncation.

The `*_many` functions run N tasks of one shape (architecture, classes, input size) in one compiled
call, vmapped over a leading task axis: what fills an accelerator (distributed/worker.py,
`workers.tasks_per_call`). On this project's CPUs N = 1 is faster per meta-gradient.

Batches for an unroll of k steps (NumPy or jax arrays):
  unlabelled: [k, B, D]          the inner loop's unlabelled minibatches
  x:          [k, n, 2K, D]      n labelled (a, b) evaluations per step
  targets:    [k, n, 2K, T]      one-hot (first num_classes columns) + regression targets
  labels:     [k, n, 2K]
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.learned_update import rule
from meta_unsup_rules.meta_objective import ridge
from meta_unsup_rules.util.config_check import ConfigError, Section

REDUCTIONS = ridge.REDUCTIONS
# The meta-gradient estimators (distributed/gradient_estimators.py; PES maths: distributed/pes.py).
ESTIMATORS = ("tbptt", "pes", "hybrid")


@dataclasses.dataclass(frozen=True)
class UnrollFns:
  """Jit-compiled functions closed over one config (retraced per shape)."""

  meta_gradient: Callable  # (theta, state, batches, num_classes) -> (loss, metrics, new_state, grads)
  unroll_loss: Callable  # same as meta_gradient without the gradient: (loss, metrics, new_state)
  apply_rule: Callable  # (theta, state, unlabelled [k, B, D]) -> new_state
  evaluate: Callable  # (state, x, targets, labels, num_classes) -> (loss, stats) at one state
  # N tasks of one shape in one call (vmap over a leading task axis of states, batches and outputs):
  meta_gradient_many: Callable  # one θ for every task
  meta_gradient_many_thetas: Callable  # a θ per task (hybrid's θ ± ε), stacked on axis 0
  unroll_loss_many_thetas: Callable  # forward only, a θ per task (PES's θ ± ε)


_CACHE: dict[str, UnrollFns] = {}


def make_unroll_fns(cfg) -> UnrollFns:
  """The jitted unroll functions for `cfg`, shared by every caller with an equal config.

  Sharing matters: each new jitted closure would otherwise recompile (tens of seconds).
  """
  key = "|".join(cfg[name].to_json() for name in ("rule", "base_model", "meta_objective"))
  if key not in _CACHE:
    _CACHE[key] = _build_unroll_fns(cfg)
  return _CACHE[key]


def _build_unroll_fns(cfg) -> UnrollFns:
  rule_cfg, base_cfg, mo_cfg = cfg.rule, cfg.base_model, cfg.meta_objective
  if mo_cfg.reduction not in REDUCTIONS:
    raise ValueError(f"meta_objective.reduction={mo_cfg.reduction!r}; expected one of {REDUCTIONS}")
  if rule_cfg.top_width != base_cfg.top_width:
    raise ValueError(
      f"rule.top_width={rule_cfg.top_width} must equal base_model.top_width="
      f"{base_cfg.top_width}: the top-delta network mixes densely across top units"
    )

  def step(theta, state, unlabelled):
    return rule.inner_step(theta, state, unlabelled, rule_cfg, base_cfg)

  def evaluate(state, x, targets, labels, num_classes):
    features_fn = lambda batch: mlp.features(state, batch, base_cfg.activation, base_cfg.bn_epsilon)
    return ridge.meta_objective(features_fn, x, targets, labels, num_classes, mo_cfg)

  def unroll_loss(theta, state, batches, num_classes):
    state = jax.lax.stop_gradient(state)

    def body(carry, inputs):
      new_state = step(theta, carry, inputs["unlabelled"])
      loss, stats = evaluate(new_state, inputs["x"], inputs["targets"], inputs["labels"], num_classes)
      return new_state, (loss, stats)

    if rule_cfg.checkpoint_unroll:
      body = jax.checkpoint(body)
    inputs = {k: batches[k] for k in ("unlabelled", "x", "targets", "labels")}
    final_state, (losses, stats) = jax.lax.scan(body, state, inputs)
    total = jnp.mean(losses) if mo_cfg.reduction == "mean" else jnp.sum(losses)
    metrics = {
      "meta_loss": jnp.mean(losses),
      "meta_loss_last": losses[-1],
      "accuracy": jnp.mean(stats["accuracy"]),
      "accuracy_last": stats["accuracy"][-1],
    }
    return total, (metrics, final_state)

  def meta_gradient(theta, state, batches, num_classes):
    (loss, (metrics, new_state)), grads = jax.value_and_grad(unroll_loss, has_aux=True)(
      theta, state, batches, num_classes
    )
    return loss, metrics, new_state, grads

  def forward_only(theta, state, batches, num_classes):
    loss, (metrics, new_state) = unroll_loss(theta, state, batches, num_classes)
    return loss, metrics, new_state

  def apply_rule(theta, state, unlabelled):
    def body(carry, x):
      return step(theta, carry, x), None

    return jax.lax.scan(body, state, unlabelled)[0]

  def many(fn, theta_axis):
    def batched(theta, states, batches, num_classes):
      return jax.vmap(lambda t, s, b: fn(t, s, b, num_classes), in_axes=(theta_axis, 0, 0))(
        theta, states, batches
      )

    return jax.jit(batched, static_argnames=("num_classes",))

  return UnrollFns(
    meta_gradient=jax.jit(meta_gradient, static_argnames=("num_classes",)),
    unroll_loss=jax.jit(forward_only, static_argnames=("num_classes",)),
    apply_rule=jax.jit(apply_rule),
    evaluate=jax.jit(evaluate, static_argnames=("num_classes",)),
    meta_gradient_many=many(meta_gradient, None),
    meta_gradient_many_thetas=many(meta_gradient, 0),
    unroll_loss_many_thetas=many(forward_only, 0),
  )


def validate_config(unroll_cfg) -> None:
  """Checks the `unroll` section (raises util.config_check.ConfigError)."""
  s = Section(unroll_cfg, "unroll")
  s.int_at_least("inner_batch_size", 2)  # batch norm over the inner batch needs two examples
  s.ints("lengths", 1)
  s.int_at_least("horizon_min", 1)
  s.int_at_least("horizon_max", 1)
  s.ordered("horizon_min", "horizon_max")
  s.one_of("estimator", ESTIMATORS)
  s.positive("pes_sigma")
  s.int_at_least("pes_pairs", 1)
  s.boolean("stagger_first_task")  # PES too: its pairs start from the advanced state with ξ = 0


def validate_compatible(cfg) -> None:
  """Cross-section constraints of the unroll: the top-delta net mixes the base model's top units."""
  if cfg.rule.top_width != cfg.base_model.top_width:
    raise ConfigError(
      "rule.top_width", cfg.rule.top_width, f"base_model.top_width = {cfg.base_model.top_width}"
    )
