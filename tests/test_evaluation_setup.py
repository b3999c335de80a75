"""evaluation/evaluation_setup.py: the set-up every evaluating command shares, without flags."""

import jax
import numpy as np
import pytest

from meta_unsup_rules.evaluation import evaluation_setup as setup


def _cfg(tiny_cfg, **evaluation):
  cfg = tiny_cfg.copy_and_resolve_references()
  cfg.evaluation.update(dict(task="two_moons", inner_steps=4, eval_every=0, seeds=2, max_test=50))
  cfg.evaluation.update(evaluation)
  return cfg


def test_set_up_names_the_task_the_seeds_and_the_theta(tiny_cfg):
  s = setup.set_up(_cfg(tiny_cfg, methods=("learned", "random_init")))
  assert s.task.name == "two_moons" and s.theta == "random"
  assert s.seeds == [int(tiny_cfg.seed), int(tiny_cfg.seed) + 1] and s.inner_steps == 4
  assert s.eval_every == 1 and s.methods == ["learned", "random_init"] and s.overrides == {}
  from meta_unsup_rules.learned_update import rule

  want = rule.init_theta(jax.random.PRNGKey(3), s.cfg.rule)  # --theta=random: init_theta(seed)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(s.theta_fn(3)), jax.tree.leaves(want)))


def test_an_export_supplies_its_rule_and_the_overrides_reapply(tiny_cfg, tiny_theta, tmp_path):
  from meta_unsup_rules import learned_update

  learned_update.save_theta(tmp_path / "theta", tiny_theta, tiny_cfg, {"updates": 0})
  cfg = _cfg(tiny_cfg)
  cfg.rule.inner_lr = 123.0  # the export's value wins over the config's ...
  s = setup.set_up(cfg, theta=str(tmp_path / "theta"))
  assert s.cfg.rule.inner_lr == tiny_cfg.rule.inner_lr and s.theta == str(tmp_path / "theta")
  # ... and an explicit override wins over the export's, for this θ and every θ resolved later.
  s = setup.set_up(_cfg(tiny_cfg), {"rule.inner_lr": 0.5}, theta=str(tmp_path / "theta"))
  assert s.cfg.rule.inner_lr == 0.5 and s.resolve("random")[1].rule.inner_lr == 0.5


@pytest.mark.parametrize(
  "evaluation,theta,needle",
  [
    ({"seeds": 0}, None, "config field evaluation.seeds = 0"),
    ({}, "/nonexistent/theta", "/nonexistent/theta"),
    ({"protocol": "episodic", "n_way": 5}, None, "expected at most two_moons's 2 classes"),
  ],
)
def test_bad_input_is_a_setup_error_with_the_message(tiny_cfg, evaluation, theta, needle):
  with pytest.raises(setup.SetupError) as e:
    setup.set_up(_cfg(tiny_cfg, **evaluation), theta=theta)
  assert needle in str(e.value)


def test_a_command_without_readouts_skips_the_readout_checks(tiny_cfg):
  s = setup.set_up(_cfg(tiny_cfg, protocol="episodic", n_way=5), readouts=False)
  assert s.task.num_classes == 2


def test_a_task_that_does_not_load_names_it(tiny_cfg, tmp_path):
  with pytest.raises(setup.SetupError, match="cannot load task 'npz:"):
    setup.set_up(_cfg(tiny_cfg, task=f"npz:{tmp_path / 'missing.npz'}"))


def test_resolve_refuses_a_missing_export(tiny_cfg):
  s = setup.set_up(_cfg(tiny_cfg))
  with pytest.raises(setup.SetupError, match="not found"):
    s.resolve("/nonexistent/theta")
