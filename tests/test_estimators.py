"""Meta-gradient estimators: PES is unbiased where truncated backprop is not; the PES worker.

The toy problem is a scalar linear dynamical system whose full-horizon gradient is known in
closed form; the worker tests run configs/tiny.py with one base-model shape (one compile).
"""

import jax
import numpy as np
import pytest
from worker_testing import assert_trees_equal, one_shape_cfg

from meta_unsup_rules.configs import paper
from meta_unsup_rules.distributed import checkpoint, gradient_estimators
from meta_unsup_rules.distributed import pes as estimators
from meta_unsup_rules.distributed import worker as worker_lib
from meta_unsup_rules.learned_update import rule, unroll
from meta_unsup_rules.util.config_check import ConfigError

# ----------------------------------------------------------------------------- toy problem
# s_{t+1} = a·s_t + b·x_t, loss Σ_t (s_{t+1} − y)², s_0 = 0, over T steps in truncations of K.
# Every leaf holds N independent trials (own inputs x, own perturbations), so one pass is N draws.
T, K, N, SIGMA, Y = 20, 4, 20_000, 0.01, 1.0
A, B = 0.9, 0.5  # a near 1: the state remembers far back, which truncated backprop cannot see


def _unroll(a, b, s, xs):
  total = np.zeros_like(s)
  for t in range(xs.shape[1]):
    s = a * s + b * xs[:, t]
    total = total + (s - Y) ** 2
  return s, total


def _exact_gradients(xs):
  """Full-horizon gradient (forward-mode through all T steps) and TBPTT's (sensitivities reset
  at each truncation), both summed over the truncations of the task."""
  s = np.zeros(N)
  full = {"a": np.zeros(N), "b": np.zeros(N)}
  tbptt = {"a": np.zeros(N), "b": np.zeros(N)}
  ds_full = {"a": np.zeros(N), "b": np.zeros(N)}
  ds_trunc = {"a": np.zeros(N), "b": np.zeros(N)}
  for t in range(T):
    if t % K == 0:
      ds_trunc = {"a": np.zeros(N), "b": np.zeros(N)}
    for ds in (ds_full, ds_trunc):
      ds["a"], ds["b"] = s + A * ds["a"], xs[:, t] + A * ds["b"]
    s = A * s + B * xs[:, t]
    for g, ds in ((full, ds_full), (tbptt, ds_trunc)):
      for name in g:
        g[name] = g[name] + 2.0 * (s - Y) * ds[name]
  return full, tbptt


def _pes_gradients(xs, key):
  """Σ over the T/K truncations of the PES estimate, per trial, using the estimators module."""
  theta = {"a": np.full(N, A), "b": np.full(N, B)}
  xi = estimators.zeros_like(theta)
  s_plus, s_minus = np.zeros(N), np.zeros(N)
  total = estimators.zeros_like(theta)
  for j in range(T // K):
    eps = estimators.sample_perturbation(jax.random.fold_in(key, j), theta, SIGMA)
    xi = estimators.accumulate(xi, eps)
    plus, minus = estimators.antithetic(theta, eps)
    window = xs[:, j * K : (j + 1) * K]
    s_plus, loss_plus = _unroll(plus["a"], plus["b"], s_plus, window)
    s_minus, loss_minus = _unroll(minus["a"], minus["b"], s_minus, window)
    total = estimators.accumulate(total, estimators.pes_estimate(xi, loss_plus, loss_minus, SIGMA))
  return total


def test_pes_matches_the_full_horizon_gradient_and_tbptt_does_not():
  xs = np.random.default_rng(0).normal(1.0, 0.5, (N, T))
  full, tbptt = _exact_gradients(xs)
  pes = _pes_gradients(xs, jax.random.PRNGKey(0))
  for name in ("a", "b"):
    assert pes[name].dtype == np.float64
    err = pes[name] - full[name]
    se = np.std(err) / np.sqrt(N)
    bias = np.mean(tbptt[name] - full[name])
    # Measured (a; b): full 1636; 618, PES − full 12 ± 16; 27 ± 13, TBPTT − full −970 ± 2; −416 ± 1
    assert abs(np.mean(err)) < 3 * se, (name, np.mean(full[name]), np.mean(err), se)
    assert abs(bias) > 20 * se, (name, bias, se)


def test_perturbations_follow_theta_and_the_key():
  theta = {"w": np.zeros((300, 100), np.float32), "b": [np.zeros(7, np.float32)]}
  eps = estimators.sample_perturbation(jax.random.PRNGKey(3), theta, 0.5)
  assert jax.tree_util.tree_structure(eps) == jax.tree_util.tree_structure(theta)
  assert eps["w"].dtype == np.float32 and eps["b"][0].shape == (7,)
  assert abs(np.std(eps["w"]) - 0.5) < 0.01 and abs(np.mean(eps["w"])) < 0.01
  again = estimators.sample_perturbation(jax.random.PRNGKey(3), theta, 0.5)
  np.testing.assert_array_equal(eps["w"], again["w"])
  other = estimators.sample_perturbation(jax.random.PRNGKey(4), theta, 0.5)
  assert not np.array_equal(eps["w"], other["w"])
  # Leaves draw independently: no two leaves share a stream.
  assert not np.allclose(eps["w"].ravel()[:7], eps["b"][0])


def test_pes_gradient_averages_pairs():
  xis = [{"w": np.array([1.0, 2.0])}, {"w": np.array([-1.0, 4.0])}]
  g = estimators.pes_gradient(xis, [3.0, 1.0], [1.0, 2.0], sigma=1.0)
  # pair 1: ξ·(3−1)/2 = [1, 2]; pair 2: ξ·(1−2)/2 = [0.5, −2]
  np.testing.assert_allclose(g["w"], [0.75, 0.0])
  with pytest.raises(ValueError, match="one ξ and two losses"):
    estimators.pes_gradient(xis, [1.0], [1.0, 2.0], sigma=1.0)


@pytest.mark.parametrize(
  "field, bad",
  [
    ("estimator", "adam"),
    ("pes_sigma", 0.0),
    ("pes_sigma", -0.1),
    ("pes_sigma", "0.01"),
    ("pes_pairs", 0),
    ("pes_pairs", 1.5),
  ],
)
def test_bad_estimator_settings_are_refused(field, bad):
  cfg = paper.get_config().unroll.to_dict()  # a plain dict: ConfigDict would refuse a float pes_pairs
  unroll.validate_config(cfg)
  cfg[field] = bad
  with pytest.raises(ConfigError) as info:
    unroll.validate_config(cfg)
  assert info.value.field == f"unroll.{field}"


# ------------------------------------------------------------------------------ the worker


def test_tbptt_worker_is_the_plain_meta_gradient(tiny_cfg, tiny_theta):
  cfg = one_shape_cfg(tiny_cfg, "tbptt")
  worker = worker_lib.TaskWorker(cfg, seed=5)
  reference = worker_lib.TaskWorker(cfg, seed=5)
  fns = unroll.make_unroll_fns(cfg)
  for _ in range(2):
    out = worker.compute_gradient(tiny_theta, theta_version=0)
    # What compute_gradient did before estimators existed, spelled out.
    if reference.task is None or reference.steps_done >= reference.horizon:
      reference.new_task()
    lengths = tuple(cfg.unroll.lengths)
    k = int(lengths[int(reference.rng.integers(0, len(lengths)))])
    loss, metrics, new_state, grads = fns.meta_gradient(
      tiny_theta,
      reference.estimator.state,
      reference.truncation_batches(k),
      num_classes=reference.task.num_classes,
    )
    reference.estimator.state = jax.tree_util.tree_map(np.asarray, new_state)
    reference.steps_done += k
    assert out.loss == float(loss) and out.grads_tbptt is None
    assert out.metrics == {name: float(v) for name, v in metrics.items()}
    assert_trees_equal(out.grads, grads)
    assert_trees_equal(worker.estimator.state, reference.estimator.state)
  assert "pes" not in worker.get_state()  # checkpoints of TBPTT runs keep their format


def test_pes_worker_gives_finite_grads_resumes_exactly_and_resets_xi(tiny_cfg, tiny_theta, monkeypatch):
  cfg = one_shape_cfg(tiny_cfg, "pes")
  cfg.unroll.pes_pairs = 2
  drawn = []
  sample = estimators.sample_perturbation
  monkeypatch.setattr(estimators, "sample_perturbation", lambda *a: drawn.append(sample(*a)) or drawn[-1])
  worker = worker_lib.TaskWorker(cfg, seed=3)
  since_task = [None, None]  # per pair: Σ ε since the current task started
  saw_new_task = False
  for call in range(8):
    tasks_before = worker.tasks_started
    drawn.clear()
    out = worker.compute_gradient(tiny_theta, theta_version=call)
    assert jax.tree_util.tree_structure(out.grads) == jax.tree_util.tree_structure(tiny_theta)
    leaves = jax.tree_util.tree_leaves(out.grads)
    assert all(isinstance(g, np.ndarray) and np.all(np.isfinite(g)) for g in leaves)
    assert np.isfinite(out.loss) and out.inner_steps == 2 and out.grads_tbptt is None
    assert len(drawn) == 2  # one ε per pair
    new_task = worker.tasks_started != tasks_before
    saw_new_task |= new_task and call > 0
    for i, pair in enumerate(worker.estimator.pairs):
      since_task[i] = drawn[i] if new_task else estimators.accumulate(since_task[i], drawn[i])
      # ξ restarts from the new task's first ε, then accumulates within the task.
      for got, want in zip(jax.tree_util.tree_leaves(pair["xi"]), jax.tree_util.tree_leaves(since_task[i])):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  assert saw_new_task, "the tiny horizon (4-8 steps of 2) should have ended a task within 8 calls"
  assert isinstance(worker.estimator, gradient_estimators.PES) and len(worker.estimator.pairs) == 2
  assert worker.get_state()["state"] is None  # a PES checkpoint's base-model state lives in its pairs
  pair = worker.estimator.pairs[0]
  plus, minus = checkpoint.flatten(pair["plus"]), checkpoint.flatten(pair["minus"])
  assert any(not np.array_equal(plus[name], minus[name]) for name in plus)  # ±ε states carried apart

  # get_state → (the checkpoint file format) → set_state, then the next gradient bit for bit.
  saved = checkpoint.decode(checkpoint.encode({"step": 0, "worker": worker.get_state()}))["worker"]
  resumed = worker_lib.TaskWorker(cfg, seed=99)
  resumed.set_state(saved)
  for call in range(2):
    a = worker.compute_gradient(tiny_theta, theta_version=10 + call)
    b = resumed.compute_gradient(tiny_theta, theta_version=10 + call)
    assert_trees_equal(a.grads, b.grads)
    assert a.loss == b.loss and a.metrics == b.metrics

  # A TBPTT worker refuses a PES worker's state (and back): the fields do not carry over.
  with pytest.raises(checkpoint.CheckpointError, match="estimator"):
    worker_lib.TaskWorker(one_shape_cfg(tiny_cfg, "tbptt"), seed=0).set_state(saved)
  theta_template = rule.init_theta(jax.random.PRNGKey(0), cfg.rule)
  assert jax.tree_util.tree_structure(theta_template) == jax.tree_util.tree_structure(out.grads)


# ------------------------------------------------------------------------------ hybrid


def test_inverse_variance_combine_weighs_by_the_batch_variances():
  rng = np.random.default_rng(0)
  pes = [{"w": rng.normal(1.0, 3.0, 5).astype(np.float32)} for _ in range(8)]
  tbptt = [{"w": rng.normal(2.0, 1.0, 5).astype(np.float32)} for _ in range(8)]
  combined, w = estimators.inverse_variance_combine(pes, tbptt)
  var = lambda s: np.sum(np.var(np.stack([x["w"] for x in s]).astype(np.float64), axis=0, ddof=1)) / 8
  assert w == pytest.approx(var(tbptt) / (var(pes) + var(tbptt)))
  assert 0.0 < w < 0.5  # the noisier PES batch counts less
  mean = lambda s: np.mean(np.stack([x["w"] for x in s]), axis=0)
  np.testing.assert_allclose(combined["w"], w * mean(pes) + (1 - w) * mean(tbptt), rtol=1e-6)
  assert combined["w"].dtype == np.float32
  assert estimators.inverse_variance_combine(pes[:1], tbptt[:1])[1] == 0.5  # no variance from one
  assert estimators.inverse_variance_combine([pes[0]] * 3, [tbptt[0]] * 3)[1] == 0.0  # both constant


def test_hybrid_worker_returns_both_estimates_and_the_learner_mixes_them(tiny_cfg, tiny_theta):
  from meta_unsup_rules.distributed import learner as learner_lib

  cfg = one_shape_cfg(tiny_cfg, "hybrid")
  worker = worker_lib.TaskWorker(cfg, seed=3)
  pes_worker = worker_lib.TaskWorker(one_shape_cfg(tiny_cfg, "pes"), seed=3)
  combine = gradient_estimators.make_estimator(cfg).combine
  assert combine == gradient_estimators.INVERSE_VARIANCE
  learner = learner_lib.Learner(cfg.learner, tiny_theta, combine=combine)
  for _ in range(cfg.learner.batch_size):
    out = worker.compute_gradient(tiny_theta, theta_version=0)
    ref = pes_worker.compute_gradient(tiny_theta, theta_version=0)
    for grads in (out.grads, out.grads_tbptt):
      assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(tiny_theta)
      assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
    assert ref.grads_tbptt is None
    # Same draws as the PES worker: the same ± unrolls, forward through the backprop's program.
    assert out.loss == pytest.approx(ref.loss, rel=1e-5)
    assert learner.accept(out)
    with pytest.raises(ValueError, match="grads_tbptt"):  # PES results cannot be mixed by variance
      learner.accept(ref)
  assert "pes" in worker.get_state()
  stats = learner.apply()
  assert not stats["skipped"] and 0.0 <= stats["hybrid_weight_pes"] <= 1.0


# ---------------------------------------------------------------- PES bookkeeping, stubbed


class _StubUnroll:
  """A known loss of θ and the carried state: L = Σ_leaves mean(θ) · (1 + c) + 0.1·c, where the
  state's counter c counts the truncations the state went through (state' = state with c + 1)."""

  def __init__(self, fns):
    self.apply_rule = fns.apply_rule
    self.calls = []  # (θ, loss) of every stubbed unroll, in call order

  def unroll_loss(self, theta, state, batches, num_classes):
    del batches, num_classes
    c = float(state.get("_c", 0.0)) if isinstance(state, dict) else 0.0
    loss = sum(float(np.mean(leaf)) for leaf in jax.tree_util.tree_leaves(theta)) * (1.0 + c) + 0.1 * c
    new_state = dict(state) if isinstance(state, dict) else {"base": state}
    new_state["_c"] = np.float32(c + 1.0)
    self.calls.append(loss)
    return np.float32(loss), {"accuracy": 0.0}, new_state


def test_pes_worker_estimate_is_xi_times_the_loss_difference_over_two_sigma_squared(
  tiny_cfg, tiny_theta, monkeypatch
):
  cfg = one_shape_cfg(tiny_cfg, "pes")
  cfg.unroll.update(dict(pes_pairs=2, pes_sigma=0.05, horizon_min=8, horizon_max=8))
  drawn = []
  sample = estimators.sample_perturbation
  monkeypatch.setattr(estimators, "sample_perturbation", lambda *a: drawn.append(sample(*a)) or drawn[-1])
  monkeypatch.setattr(gradient_estimators, "_finite", lambda tree: True)  # the stub's states hold a counter
  worker = worker_lib.TaskWorker(cfg, seed=5)
  worker.new_task()
  stub = _StubUnroll(worker.fns)
  worker.fns = stub
  sigma = cfg.unroll.pes_sigma
  xi = [None, None]
  for call in range(4):  # horizon 8, k = 2: one task of 4 truncations
    drawn.clear()
    stub.calls.clear()
    out = worker.compute_gradient(tiny_theta, theta_version=call)
    plus_minus = np.asarray(stub.calls).reshape(2, 2)  # per pair: L(θ + ε), L(θ − ε)
    expected = []
    for i in range(2):
      xi[i] = drawn[i] if xi[i] is None else estimators.accumulate(xi[i], drawn[i])
      scale = (plus_minus[i, 0] - plus_minus[i, 1]) / (2 * sigma**2)
      expected.append(jax.tree_util.tree_map(lambda x, s=scale: x * s, xi[i]))
    want = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, *expected)
    for got, w in zip(jax.tree_util.tree_leaves(out.grads), jax.tree_util.tree_leaves(want)):
      np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-6)
    assert out.loss == pytest.approx(float(np.mean(plus_minus)), rel=1e-6)
  assert worker.tasks_started == 1


def test_pes_with_staggered_phases_starts_every_pair_at_the_advanced_state_with_xi_zero(
  tiny_cfg, tiny_theta, monkeypatch
):
  cfg = one_shape_cfg(tiny_cfg, "pes")
  cfg.unroll.update(dict(pes_pairs=2, lengths=(2,), horizon_min=16, horizon_max=32, stagger_first_task=True))
  unroll.validate_config(cfg.unroll)  # PES may stagger
  drawn = []
  sample = estimators.sample_perturbation
  monkeypatch.setattr(estimators, "sample_perturbation", lambda *a: drawn.append(sample(*a)) or drawn[-1])
  starts = []
  for worker_id in range(6):
    worker = worker_lib.TaskWorker(cfg, seed=7, worker_id=worker_id)
    drawn.clear()
    out = worker.compute_gradient(tiny_theta, theta_version=0)
    starts.append(out.task_step - out.inner_steps)
    assert 0 <= starts[-1] < worker.horizon and starts[-1] % 2 == 0
    # ξ after the first truncation is that truncation's ε alone: the advance added nothing.
    for pair, eps in zip(worker.estimator.pairs, drawn):
      for got, want in zip(jax.tree_util.tree_leaves(pair["xi"]), jax.tree_util.tree_leaves(eps)):
        np.testing.assert_array_equal(got, want)
  assert len(set(starts)) >= 3, starts
