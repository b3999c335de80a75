"""The Python API (learned_update/api.py) on tiny sizes: load θ, build, train, features, readout."""

import jax
import numpy as np
import pytest

from meta_unsup_rules.learned_update import ExportError, api, export, rule

INPUT_DIM = 12


@pytest.fixture(scope="module")
def tiny_rule(tiny_cfg, tmp_path_factory):
  path = tmp_path_factory.mktemp("export")
  export.save_theta(path, rule.init_theta(jax.random.PRNGKey(3), tiny_cfg.rule), tiny_cfg, {"updates": 0})
  return api.load_rule(path)


def _blobs(n=120, seed=0):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 3, n)
  return (rng.normal(size=(3, INPUT_DIM))[y] * 2 + rng.normal(size=(n, INPUT_DIM))).astype(np.float32), y


def _leaves(model):
  return [np.asarray(l) for l in jax.tree_util.tree_leaves(model.state)]


def test_a_release_loads_by_name_and_a_bad_name_lists_them():
  assert "ojac_hand_clean" in api.release_names()
  released = api.load_rule("ojac_hand_clean")
  assert released.path == api.RELEASES_DIR / "ojac_hand_clean" and released.batch_size == 32
  assert released.config.rule.hebb_term == "oja_centred"
  with pytest.raises(ExportError, match="ojac_hand_clean"):
    api.load_rule("no_such_release")


def test_an_earlier_theta_is_not_a_release_but_loads_by_path():
  assert "ojac_u250" not in api.release_names()  # checkpoints/ holds releases only
  with pytest.raises(ExportError, match="not a θ export directory"):
    api.load_rule("ojac_u250")
  earlier = api.load_rule(api.REPO_ROOT / "experiments" / "earlier" / "thetas" / "ojac_u250")
  assert earlier.summary["release"] is False and earlier.config.rule.hebb_term == "oja_centred"


def test_train_features_and_readout(tiny_rule, tiny_cfg):
  x, y = _blobs()
  model = api.init_model(tiny_rule, INPUT_DIM, hidden_widths=(16,), seed=1)
  assert [l["w"].shape for l in model.state["layers"]] == [
    (INPUT_DIM, 16),
    (16, tiny_cfg.base_model.top_width),
  ]
  trained = api.train(tiny_rule, model, x, steps=3, show_progress=False)
  assert trained.steps == 3
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(model), _leaves(trained)))
  again = api.train(tiny_rule, model, x, steps=3, show_progress=False)
  for a, b in zip(_leaves(trained), _leaves(again)):  # seeded minibatches: the same run
    np.testing.assert_array_equal(a, b)
  f = api.features(trained, x[:40].reshape(40, 3, 4))  # [N, ...] inputs are flattened
  assert f.shape == (40, tiny_cfg.base_model.top_width) and np.isfinite(f).all()
  accuracy = api.score_readout(trained, x[:60], y[:60], x[60:], y[60:])
  assert 0.0 <= accuracy <= 1.0
  with pytest.raises(ValueError, match="expects 12"):
    api.features(trained, np.zeros((4, 5)))


def test_chunked_steps_and_batch_iterators_give_the_stepwise_result(tiny_rule, monkeypatch):
  x, _ = _blobs()
  model = api.init_model(tiny_rule, INPUT_DIM, hidden_widths=(16,))
  batches = [x[i : i + 16] for i in range(0, 48, 16)]
  one_scan = api.train(tiny_rule, model, iter(batches), steps=3, show_progress=False)
  monkeypatch.setattr(api, "_CHUNK_STEPS", 2)  # scans of 2 and 1 steps
  two_scans = api.train(tiny_rule, model, batches, steps=3, show_progress=False)
  for a, b in zip(_leaves(one_scan), _leaves(two_scans)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="ran out after 3 of 4"):
    api.train(tiny_rule, model, batches, steps=4, show_progress=False)


@pytest.mark.slow
def test_the_readme_example_runs(capsys):
  readme = (api.REPO_ROOT / "README.md").read_text(encoding="utf-8")
  section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
  code = section.split("```python\n", 1)[1].split("```", 1)[0]
  assert len(code.strip().splitlines()) <= 15
  exec(compile(code, "README.md (Python API)", "exec"), {})
  accuracy = float(capsys.readouterr().out.strip().splitlines()[-1])
  assert 0.0 <= accuracy <= 1.0
