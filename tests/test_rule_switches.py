"""The rule's design switches (rule.terms, feedback, unit_mixing, top_delta): invariants on both
implementations, finite meta-gradients, and an export that evaluates with its switches."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_unsup_rules import base_models
from meta_unsup_rules.configs import tiny
from meta_unsup_rules.learned_update import rule, unroll
from meta_unsup_rules.util.config_check import ConfigError
from tests.conftest import TINY_CLASSES, TINY_INPUT_DIM, tiny_batches

IMPLEMENTATIONS = ("reference", "fused")


def _cfg(implementation, **rule_fields):
  cfg = tiny.get_config()
  cfg.rule.implementation = implementation
  cfg.rule.update(rule_fields)
  return cfg


def _state(cfg, key=3):
  widths = base_models.layer_widths(cfg.base_model)
  return base_models.init(jax.random.PRNGKey(key), TINY_INPUT_DIM, widths, cfg.base_model)


def _close(a, b, rtol=1e-4, atol=1e-5):
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=str(path))


def _normalize_columns(t, eps):
  return t / np.sqrt(eps + np.mean(np.square(t), axis=0, keepdims=True))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("term", rule.WEIGHT_TERMS)
def test_one_term_left_is_the_merge_of_that_term_alone(implementation, term):
  cfg = _cfg(implementation, terms=(term,)).rule
  keys = jax.random.split(jax.random.PRNGKey(7), len(rule.WEIGHT_TERMS) + 2)
  terms = {name: jax.random.normal(k, (10, 7)) for name, k in zip(rule.WEIGHT_TERMS, keys)}
  terms["w_base"] = np.asarray(terms["w_base"])
  mix = jax.random.normal(keys[-2], (len(rule.WEIGHT_TERMS),))
  change = {"merge": {"w": mix, "b": jnp.array(0.3)}}
  got = np.asarray(rule.merge_weight_change(change, terms, cfg))
  # By hand, in float64: the term's normalisation, mixing weight and bias, ÷12, the projection,
  # ÷√12, the column normalisation and the fixed −ŵ/7.
  eps, n, w_hat = cfg.normalize_epsilon, len(rule.WEIGHT_TERMS), np.asarray(terms["w_base"], np.float64)
  i = rule.WEIGHT_TERMS.index(term)
  c = (float(mix[i]) * _normalize_columns(np.asarray(terms[term], np.float64), eps) + 0.3) / n
  c = (c - w_hat * max(np.mean(c * w_hat), 0.0)) / math.sqrt(n)
  want = _normalize_columns(c, eps) - w_hat * cfg.anti_collapse_scale
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # The other mixing weights get no gradient; this term's does.
  grad = jax.grad(
    lambda m: jnp.sum(jnp.cos(rule.merge_weight_change({"merge": {"w": m, "b": 0.3}}, terms, cfg)))
  )(mix)
  assert float(grad[i]) != 0.0 and np.all(np.delete(np.asarray(grad), i) == 0.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_transpose_feedback_is_separate_feedback_with_v_set_to_w(implementation):
  separate, transpose = _cfg(implementation), _cfg(implementation, feedback="transpose")
  theta = rule.init_theta(jax.random.PRNGKey(0), separate.rule)
  state = _state(separate)
  # V different from W, so that the two settings differ at all.
  state = {
    **state,
    "layers": tuple(
      {**l, "v": l["v"] + 0.05 * jax.random.normal(jax.random.PRNGKey(i), l["v"].shape)}
      for i, l in enumerate(state["layers"])
    ),
  }
  v_is_w = {**state, "layers": tuple({**l, "v": l["w"]} for l in state["layers"])}
  x = jax.random.normal(jax.random.PRNGKey(4), (16, TINY_INPUT_DIM))
  zs, xs = base_models.mlp.forward(state, x, separate.base_model.activation, separate.base_model.bn_epsilon)
  got = rule.compute_hidden_states(theta, state, zs, xs, transpose.rule)
  want = rule.compute_hidden_states(theta, v_is_w, zs, xs, separate.rule)
  _close(got, want)
  different = rule.compute_hidden_states(theta, state, zs, xs, separate.rule)
  assert not np.allclose(np.asarray(got[0]), np.asarray(different[0]), atol=1e-5)


def _permute_hidden_layer(state, perm):
  """The units of the first hidden layer permuted: its columns of W, V and b, the next layer's rows."""
  l0, l1, *rest = state["layers"]
  l0 = {"w": l0["w"][:, perm], "v": l0["v"][:, perm], "b": l0["b"][perm]}
  l1 = {**l1, "w": l1["w"][perm, :], "v": l1["v"][perm, :]}
  return {**state, "layers": (l0, l1, *rest)}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_without_unit_mixing_the_rule_is_equivariant_to_permuting_hidden_units(implementation):
  x = jax.random.normal(jax.random.PRNGKey(4), (16, TINY_INPUT_DIM))
  perm = np.random.default_rng(0).permutation(24)
  for unit_mixing in (False, True):
    cfg = _cfg(implementation, unit_mixing=unit_mixing)
    theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
    state = _state(cfg)
    updates = rule.compute_updates(theta, state, x, cfg.rule, cfg.base_model)
    permuted = rule.compute_updates(theta, _permute_hidden_layer(state, perm), x, cfg.rule, cfg.base_model)
    expected = [
      {"w": updates[0]["w"][:, perm], "v": updates[0]["v"][:, perm], "b": updates[0]["b"][perm]},
      {"w": updates[1]["w"][perm, :], "v": updates[1]["v"][perm, :], "b": updates[1]["b"]},
      *updates[2:],
    ]
    if not unit_mixing:
      _close(permuted, expected, rtol=1e-3, atol=1e-4)
    else:  # the unit-axis convolutions and unit IDs tell units apart
      gap = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree_util.tree_leaves(permuted), jax.tree_util.tree_leaves(expected))
      )
      assert gap > 1e-3


SWITCHES = [
  dict(terms=("hebb", "w_base", "decorr_x")),
  dict(feedback="transpose"),
  dict(feedback="transpose", identical_updates=False),
  dict(unit_mixing=False),
  dict(top_delta="zero"),
]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("switch", SWITCHES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_every_switch_keeps_meta_gradients_finite(implementation, switch):
  cfg = _cfg(implementation, **switch)
  rule.validate_config(cfg.rule)
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  batches = tiny_batches(cfg, np.random.default_rng(0))
  loss, _, _, grads = unroll.make_unroll_fns(cfg).meta_gradient(
    theta, _state(cfg), batches, num_classes=TINY_CLASSES
  )
  assert np.isfinite(float(loss))
  leaves = [np.asarray(g) for g in jax.tree_util.tree_leaves(grads)]
  assert all(np.all(np.isfinite(g)) for g in leaves) and any(np.any(g != 0) for g in leaves)
  if switch.get("top_delta") == "zero":  # the top-delta network gets no gradient at all
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree_util.tree_leaves(grads["top_delta"]))
  if switch.get("unit_mixing") is False:
    for block in grads["compute_h"]["blocks"]:
      assert all(np.all(np.asarray(g) == 0) for g in jax.tree_util.tree_leaves(block["unit_convs"]))


@pytest.mark.parametrize(
  "field,value",
  [
    ("terms", ("hebb", "nosuch")),
    ("terms", ()),
    ("terms", ("hebb", "hebb")),
    ("feedback", "both"),
    ("unit_mixing", "yes"),
    ("top_delta", "none"),
  ],
)
def test_a_bad_switch_value_names_the_field_and_the_allowed_values(field, value):
  cfg = _cfg("fused")
  with cfg.rule.ignore_type():
    cfg.rule[field] = value
  with pytest.raises(ConfigError, match=f"rule.{field}"):
    rule.validate_config(cfg.rule)


def test_a_switch_survives_export_and_evaluate(tmp_path):
  from meta_unsup_rules.evaluation import evaluation_setup as setup
  from meta_unsup_rules.evaluation import runner
  from meta_unsup_rules.learned_update import export

  cfg = _cfg("fused", terms=("hebb", "w_base"), unit_mixing=False, top_delta="zero", feedback="transpose")
  theta = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  export.save_theta(tmp_path / "theta", theta, cfg, {"note": "switch test"})
  _, loaded_cfg, _ = export.load_theta(tmp_path / "theta")
  for field in ("terms", "unit_mixing", "top_delta", "feedback"):
    assert loaded_cfg.rule[field] == cfg.rule[field], field
  eval_cfg = tiny.get_config()
  eval_cfg.evaluation.update(
    dict(task="two_moons", inner_steps=4, eval_every=4, seeds=1, methods=("learned",))
  )
  s = setup.set_up(eval_cfg, {}, theta=str(tmp_path / "theta"))
  assert tuple(s.cfg.rule.terms) == ("hebb", "w_base") and s.cfg.rule.top_delta == "zero"
  result = runner.run_evaluation(s)
  assert 0.0 <= result["final"]["learned"]["ridge"]["mean"] <= 1.0


def test_the_rule_parts_study_leaves_out_each_term_and_flips_each_switch():
  from experiments.tools import switch_conditions as rule_parts
  from experiments.tools import trends

  cfg = _cfg("fused")
  named = rule_parts.conditions(cfg)
  assert named["as released"] == {} and len(named) == 1 + len(rule.WEIGHT_TERMS) + 3
  for term in rule.WEIGHT_TERMS:
    assert term not in named[f"without {term}"]["terms"] and len(named[f"without {term}"]["terms"]) == 11
  assert trends.paired_difference([0.5, 0.7], [0.4, 0.5])["mean"] == pytest.approx(0.15)
