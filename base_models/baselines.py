r"""Baseline representation learners on the base-model architecture (spec §6).

Every baseline exposes the same two-method interface the evaluator drives in
lockstep with the learned rule, on the same unlabelled stream:

    advance(unlabelled: float32 [k, B, D])   # k more training steps (no-op if label-free of data)
    features(x: float32 [N, D]) -> [N, F]    # the representation the readouts are fitted on

All neural baselines start from the *same* base-model state as the learned rule
(same seed, same input permutation, same widths/activation/BN) and read out the
base MLP's top features x^L (BN over the batch passed in, as for the learned rule).

=================  ==========================================================================
random_init        the untouched base model (no updates).
pca                PCA to top_width components of all unlabelled examples seen so far
                   (streaming covariance, float64). Before any data it is a random
                   orthonormal projection, the PCA analogue of "random init".
vae                encoder = the base MLP; mean and log-variance are two linear heads on the
                   top features x^L; decoder = MLP mirroring the hidden widths (no BN);
                   Bernoulli likelihood for data in [0, 1] ("auto"), otherwise Gaussian with a
                   learned per-dimension variance; one reparameterised sample; Adam.
                   Features = x^L, the encoder output the mean head reads.
supervised         the base MLP + a linear softmax head, trained with Adam (full batch) on the
                   labelled support set only, until its training accuracy reaches
                   `target_accuracy` or `max_steps`. It sees no unlabelled data, so its curve
                   is flat in the number of inner steps.
contrastive        SimCLR: NT-Xent between two augmented views (additive Gaussian noise
                   scaled by the data's global std, then random feature dropout — both
                   valid for permuted/flat inputs) through the base MLP and a 2-layer
                   projection head; both views share one BN pass; Adam. Features = x^L
                   (before the head).
hebbian            a hand-designed local rule: Oja's subspace rule on every layer at once,
                   ΔW = η (x yᵀ − W yᵀy)/B with y = x W, where x is the layer's input centred
                   and scaled so that the batch's mean squared norm is 1 (makes η
                   scale-free and stable for η < 1). Biases and V are left untouched
                   (BN after every layer makes W's scale irrelevant).
protonet           a prototypical network (Snell et al. 2017) on the base MLP: a *supervised*
                   reference that sees the labels of the whole train split (not only the
                   support set), so it is an upper reference, not a competitor. Per inner step
                   `steps_per_inner_step` Adam steps, each on one N-way episode drawn from the
                   train split (k_shot support + n_query queries per class, without
                   replacement where the class has enough examples); loss = cross-entropy of
                   −‖query − prototype‖² over the episode's classes; support and queries take
                   separate BN passes, as the evaluator computes support and test
                   features.
                   It ignores the unlabelled stream's examples but advances in step with it.
protonet_permuted  the same protonet (same key, hence the identical trained network) evaluated
                   on inputs gathered with a fixed random pixel permutation that it never saw
                   in training (Fig. 2 right of the paper: a protonet's features do not
                   transfer to permuted inputs; the learned rule is permutation-invariant).
=================  ==========================================================================

Settings live in `cfg.baselines` (see `default_baseline_config`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from base_models import mlp

# New baselines go at the end: evaluate.seed_keys derives each one's key from its index.
BASELINES = ("random_init", "pca", "vae", "supervised", "contrastive", "hebbian", "protonet",
             "protonet_permuted")
LIKELIHOODS = ("auto", "bernoulli", "gaussian")


def default_baseline_config() -> ml_collections.ConfigDict:
  """Baseline hyper-parameters (spec §6: the paper's were in an unavailable appendix; [ours])."""
  return ml_collections.ConfigDict(dict(
      vae=dict(
          learning_rate=1e-3,      # Adam (brief)
          latent_dim=0,            # 0: base_model.top_width
          likelihood="auto",       # auto: bernoulli if the data lie in [0, 1], else gaussian
          kl_weight=1.0,           # plain ELBO
          decoder_init_scale=1.0,  # decoder weights ~ N(0, scale²/fan_in)
      ),
      supervised=dict(
          learning_rate=1e-3,      # Adam, full batch on the support set
          max_steps=2_000,
          check_every=50,          # steps between checks of the training accuracy
          target_accuracy=1.0,     # stop once reached
      ),
      contrastive=dict(
          learning_rate=1e-3,      # Adam
          temperature=0.5,         # NT-Xent τ
          noise_std=0.2,           # additive noise, in units of the data's global std
          dropout_rate=0.2,        # probability of zeroing an input feature per view
          projection_width=0,      # 0: base_model.top_width (hidden and output of the head)
      ),
      hebbian=dict(
          learning_rate=0.2,       # Oja η on unit-mean-square inputs (stable for η < 1)
      ),
      protonet=dict(               # also used by protonet_permuted
          learning_rate=1e-3,      # Adam
          n_way=5,                 # classes per training episode (capped at the task's classes)
          k_shot=10,               # support per class: the evaluator's support_per_class
          n_query=15,              # queries per class (Snell et al.)
          steps_per_inner_step=1,  # episodes (Adam steps) per unlabelled minibatch of the stream
      ),
  ))


# ----------------------------------------------------------------------------- helpers

@functools.partial(jax.jit, static_argnames=("activation", "bn_epsilon"))
def _mlp_features(state, x, activation, bn_epsilon):
  return mlp.features(state, x, activation, bn_epsilon)


def trainable(state: dict) -> tuple:
  """The forward parameters (W, b) of every layer; V and the permutation stay fixed."""
  return tuple({"w": layer["w"], "b": layer["b"]} for layer in state["layers"])


def with_trainable(state: dict, params: tuple) -> dict:
  layers = tuple(dict(layer, w=p["w"], b=p["b"]) for layer, p in zip(state["layers"], params))
  return dict(state, layers=layers)


def _dense_init(key, n_in, n_out, scale=1.0):
  return {"w": scale * jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in),
          "b": jnp.zeros((n_out,))}


def _dense(p, x):
  return x @ p["w"] + p["b"]


class _MLPBaseline:
  """Common part: a base-model state and features from its top layer."""
  name = "base"

  def __init__(self, state: dict, base_cfg):
    self.state = state
    self.activation = str(base_cfg.activation)
    self.bn_epsilon = float(base_cfg.bn_epsilon)

  def advance(self, unlabelled) -> None:
    del unlabelled

  def features(self, x) -> np.ndarray:
    return np.asarray(_mlp_features(self.state, jnp.asarray(x, jnp.float32),
                                    self.activation, self.bn_epsilon))


class RandomInit(_MLPBaseline):
  name = "random_init"


# ----------------------------------------------------------------------------- PCA

class PCA:
  """Streaming PCA to `num_components` of every unlabelled example seen so far."""
  name = "pca"

  def __init__(self, key, input_dim: int, num_components: int):
    self.k = int(min(num_components, input_dim))
    self.count = 0
    self.total = np.zeros(input_dim)
    self.outer = np.zeros((input_dim, input_dim))
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (input_dim, self.k)), np.float64))
    self.mean, self.components = np.zeros(input_dim), q
    self.explained_variance = None

  def advance(self, unlabelled) -> None:
    x = np.asarray(unlabelled, np.float64).reshape(-1, self.total.size)
    if not len(x):
      return
    self.count += len(x)
    self.total += x.sum(0)
    self.outer += x.T @ x
    self.mean = self.total / self.count
    cov = self.outer / self.count - np.outer(self.mean, self.mean)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][: self.k]
    self.components, self.explained_variance = vecs[:, order], vals[order]

  def features(self, x) -> np.ndarray:
    return ((np.asarray(x, np.float64) - self.mean) @ self.components).astype(np.float32)


# ----------------------------------------------------------------------------- VAE

def _resolve_likelihood(name: str, sample: np.ndarray) -> str:
  if name not in LIKELIHOODS:
    raise ValueError(f"unknown vae.likelihood {name!r}; expected one of {LIKELIHOODS}")
  if name != "auto":
    return name
  return "bernoulli" if float(sample.min()) >= 0.0 and float(sample.max()) <= 1.0 else "gaussian"


def vae_init(key, state: dict, input_dim: int, base_cfg, vcfg) -> dict:
  top = int(base_cfg.top_width)
  latent = int(vcfg.latent_dim) or top
  widths = (latent,) + tuple(int(w) for w in base_cfg.hidden_widths)[::-1] + (input_dim,)
  keys = jax.random.split(key, len(widths) + 1)
  decoder = tuple(_dense_init(k, a, b, vcfg.decoder_init_scale)
                  for k, a, b in zip(keys[2:], widths[:-1], widths[1:]))
  return {"encoder": trainable(state),
          "mu": _dense_init(keys[0], top, latent, 0.1),
          "logvar": _dense_init(keys[1], top, latent, 0.1),
          "decoder": decoder,
          "out_logvar": jnp.zeros((input_dim,))}


def vae_elbo(params, state, x, key, likelihood, activation, bn_epsilon, kl_weight):
  """Per-example ELBO (nats) of a batch, one reparameterised sample; returns (mean ELBO, features)."""
  feats = mlp.features(with_trainable(state, params["encoder"]), x, activation, bn_epsilon)
  mu, logvar = _dense(params["mu"], feats), _dense(params["logvar"], feats)
  z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
  act = mlp.activation_fn(activation)
  h = z
  for i, layer in enumerate(params["decoder"]):
    h = _dense(layer, h)
    if i < len(params["decoder"]) - 1:
      h = act(h)
  if likelihood == "bernoulli":
    log_px = -jnp.sum(optax.sigmoid_binary_cross_entropy(h, x), axis=1)
  else:
    lv = params["out_logvar"]
    log_px = -0.5 * jnp.sum(jnp.square(x - h) * jnp.exp(-lv) + lv + jnp.log(2 * jnp.pi), axis=1)
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu) - 1.0 - logvar, axis=1)
  return jnp.mean(log_px - kl_weight * kl), jnp.mean(log_px - kl)


@functools.lru_cache(maxsize=None)
def _vae_train_fn(likelihood, activation, bn_epsilon, kl_weight, lr):
  opt = optax.adam(lr)

  def loss_fn(params, state, x, key):
    objective, elbo = vae_elbo(params, state, x, key, likelihood, activation, bn_epsilon, kl_weight)
    return -objective, elbo

  def train(params, opt_state, state, key, batches):
    def body(carry, x):
      params, opt_state, key = carry
      key, sub = jax.random.split(key)
      (_, elbo), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, sub)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, key), elbo
    (params, opt_state, key), elbos = jax.lax.scan(body, (params, opt_state, key), batches)
    return params, opt_state, key, elbos

  return opt, jax.jit(train)


class VAE(_MLPBaseline):
  """VAE with the base MLP as encoder, trained on the unlabelled stream."""
  name = "vae"

  def __init__(self, key, state: dict, input_dim: int, base_cfg, vcfg, data_sample: np.ndarray):
    super().__init__(state, base_cfg)
    self.likelihood = _resolve_likelihood(vcfg.likelihood, np.asarray(data_sample))
    key, init_key = jax.random.split(key)
    self.key = key
    self.params = vae_init(init_key, state, input_dim, base_cfg, vcfg)
    self.opt, self._train = _vae_train_fn(self.likelihood, self.activation, self.bn_epsilon,
                                          float(vcfg.kl_weight), float(vcfg.learning_rate))
    self.opt_state = self.opt.init(self.params)
    self.elbo_history: list[float] = []

  def advance(self, unlabelled) -> None:
    if len(unlabelled) == 0:
      return
    self.params, self.opt_state, self.key, elbos = self._train(
        self.params, self.opt_state, self.state, self.key, jnp.asarray(unlabelled, jnp.float32))
    self.elbo_history.extend(np.asarray(elbos).tolist())
    self.state = with_trainable(self.state, self.params["encoder"])


# ----------------------------------------------------------------------------- supervised

@functools.lru_cache(maxsize=None)
def _supervised_fns(activation, bn_epsilon, lr, num_classes):
  opt = optax.adam(lr)

  def logits_fn(params, state, x):
    feats = mlp.features(with_trainable(state, params["body"]), x, activation, bn_epsilon)
    return _dense(params["head"], feats)

  def loss_fn(params, state, x, y):
    logits = logits_fn(params, state, x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

  def train(params, opt_state, state, x, y, num_steps):
    def body(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, state, x, y)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss
    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), None, length=num_steps)
    acc = jnp.mean(jnp.argmax(logits_fn(params, state, x), axis=1) == y)
    return params, opt_state, losses, acc

  return opt, jax.jit(train, static_argnames=("num_steps",))


class Supervised(_MLPBaseline):
  """The base MLP + linear head trained by cross-entropy on the few labelled examples only."""
  name = "supervised"

  def __init__(self, key, state: dict, base_cfg, scfg, x_support, y_support, num_classes: int):
    super().__init__(state, base_cfg)
    params = {"body": trainable(state),
              "head": _dense_init(key, int(base_cfg.top_width), int(num_classes), 0.1)}
    opt, train = _supervised_fns(self.activation, self.bn_epsilon, float(scfg.learning_rate),
                                 int(num_classes))
    opt_state = opt.init(params)
    x = jnp.asarray(x_support, jnp.float32)
    y = jnp.asarray(y_support, jnp.int32)
    self.steps, self.train_accuracy, self.losses = 0, 0.0, []
    check = max(1, int(scfg.check_every))
    while self.steps < int(scfg.max_steps):
      n = min(check, int(scfg.max_steps) - self.steps)
      params, opt_state, losses, acc = train(params, opt_state, state, x, y, num_steps=n)
      self.steps += n
      self.losses.extend(np.asarray(losses).tolist())
      self.train_accuracy = float(acc)
      if self.train_accuracy >= float(scfg.target_accuracy):
        break
    self.params = params
    self.state = with_trainable(state, params["body"])


# ----------------------------------------------------------------------------- prototypical net

def prototypical_loss(feats_support, feats_query, n_way: int):
  """(loss, accuracy) of one episode; rows are class-major (row i has label i // rows-per-class)."""
  protos = jnp.mean(feats_support.reshape(n_way, -1, feats_support.shape[-1]), axis=1)
  logits = -jnp.sum(jnp.square(feats_query[:, None, :] - protos[None]), axis=-1)
  labels = jnp.repeat(jnp.arange(n_way), feats_query.shape[0] // n_way)
  loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
  return loss, jnp.mean(jnp.argmax(logits, axis=1) == labels)


def episode_indices(rng: np.random.Generator, class_pools, num_episodes: int, n_way: int,
                    per_class: int) -> np.ndarray:
  """int32 [num_episodes, n_way·per_class] example indices, class-major within an episode."""
  out = np.empty((num_episodes, n_way, per_class), np.int64)
  for e in range(num_episodes):
    for j, c in enumerate(rng.choice(len(class_pools), n_way, replace=False)):
      pool = class_pools[c]
      out[e, j] = pool[rng.choice(len(pool), per_class, replace=len(pool) < per_class)]
  return out.reshape(num_episodes, -1).astype(np.int32)


@functools.lru_cache(maxsize=None)
def _protonet_train_fn(activation, bn_epsilon, lr, n_way, k_shot):
  opt = optax.adam(lr)

  def loss_fn(params, state, x):
    x = x.reshape(n_way, -1, x.shape[-1])
    support = x[:, :k_shot].reshape(-1, x.shape[-1])
    query = x[:, k_shot:].reshape(-1, x.shape[-1])
    s = with_trainable(state, params)
    return prototypical_loss(mlp.features(s, support, activation, bn_epsilon),
                             mlp.features(s, query, activation, bn_epsilon), n_way)

  def train(params, opt_state, state, data, episodes):
    def body(carry, idx):
      params, opt_state = carry
      (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, data[idx])
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), (loss, acc)
    (params, opt_state), (losses, accs) = jax.lax.scan(body, (params, opt_state), episodes)
    return params, opt_state, losses, accs

  return opt, jax.jit(train)


def non_identity_permutation(key, n: int) -> np.ndarray:
  """A random permutation of n ≥ 2 items that moves at least one (for n = 2: the swap)."""
  if n < 2:
    raise ValueError(f"cannot permute {n} input feature(s)")
  for i in range(100):
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, i), n))
    if np.any(perm != np.arange(n)):
      return perm
  return np.roll(np.arange(n), 1)   # unreachable in practice: P(identity) = 1/n!


class ProtoNet(_MLPBaseline):
  """Prototypical network trained episodically on the labelled train split."""
  name = "protonet"

  def __init__(self, key, state: dict, base_cfg, pcfg, x_labelled, y_labelled, num_classes: int,
               permute_eval: bool = False):
    super().__init__(state, base_cfg)
    y = np.asarray(y_labelled)
    self.class_pools = [np.flatnonzero(y == c) for c in range(int(num_classes))]
    if any(len(p) == 0 for p in self.class_pools):
      raise ValueError("protonet: every class needs at least one labelled training example")
    self.n_way = min(int(pcfg.n_way), int(num_classes))
    self.k_shot, self.n_query = int(pcfg.k_shot), int(pcfg.n_query)
    self.steps_per_inner_step = int(pcfg.steps_per_inner_step)
    if min(self.n_way - 1, self.k_shot, self.n_query, self.steps_per_inner_step) < 1:
      raise ValueError(
          f"protonet needs n_way >= 2 (capped at the task's classes), k_shot, n_query and "
          f"steps_per_inner_step >= 1; got {self.n_way}, {self.k_shot}, {self.n_query}, "
          f"{self.steps_per_inner_step}")
    key_train, key_perm = jax.random.split(key)
    self.rng = np.random.default_rng(np.asarray(jax.random.bits(key_train, (4,), jnp.uint32)))
    self.data = jnp.asarray(x_labelled, jnp.float32)
    # Drawn for both variants so that their training randomness is identical.
    self.eval_permutation = non_identity_permutation(key_perm, self.data.shape[1])
    self.permute_eval = bool(permute_eval)
    if self.permute_eval:
      self.name = "protonet_permuted"
    self.params = trainable(state)
    self.opt, self._train = _protonet_train_fn(self.activation, self.bn_epsilon,
                                               float(pcfg.learning_rate), self.n_way, self.k_shot)
    self.opt_state = self.opt.init(self.params)
    self.loss_history: list[float] = []
    self.accuracy_history: list[float] = []

  def advance(self, unlabelled) -> None:
    num = len(unlabelled) * self.steps_per_inner_step
    if num == 0:
      return
    episodes = episode_indices(self.rng, self.class_pools, num, self.n_way,
                               self.k_shot + self.n_query)
    self.params, self.opt_state, losses, accs = self._train(
        self.params, self.opt_state, self.state, self.data, jnp.asarray(episodes))
    self.loss_history.extend(np.asarray(losses).tolist())
    self.accuracy_history.extend(np.asarray(accs).tolist())
    self.state = with_trainable(self.state, self.params)

  def features(self, x) -> np.ndarray:
    if self.permute_eval:
      x = np.asarray(x)[:, self.eval_permutation]
    return super().features(x)


# ----------------------------------------------------------------------------- contrastive

def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float) -> jax.Array:
  """SimCLR's NT-Xent: each view's positive is its partner among the other 2B−1 examples."""
  z = jnp.concatenate([z1, z2], axis=0)
  z = z * jax.lax.rsqrt(jnp.sum(jnp.square(z), axis=1, keepdims=True) + 1e-12)
  n = z1.shape[0]
  sim = (z @ z.T) / temperature
  sim = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, sim)
  partner = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(sim, partner))


def augment(key, x, noise_std, dropout_rate):
  """Additive Gaussian noise (absolute std), then zero each feature with prob. dropout_rate."""
  k1, k2 = jax.random.split(key)
  noisy = x + noise_std * jax.random.normal(k1, x.shape)
  keep = jax.random.bernoulli(k2, 1.0 - dropout_rate, x.shape)
  return jnp.where(keep, noisy, 0.0)


@functools.lru_cache(maxsize=None)
def _contrastive_train_fn(activation, bn_epsilon, lr, temperature, dropout_rate):
  opt = optax.adam(lr)
  act = mlp.activation_fn(activation)

  def loss_fn(params, state, x, key, noise_std):
    k1, k2 = jax.random.split(key)
    views = jnp.concatenate([augment(k1, x, noise_std, dropout_rate),
                             augment(k2, x, noise_std, dropout_rate)], axis=0)
    feats = mlp.features(with_trainable(state, params["body"]), views, activation, bn_epsilon)
    proj = _dense(params["proj2"], act(_dense(params["proj1"], feats)))
    return nt_xent(proj[: x.shape[0]], proj[x.shape[0]:], temperature)

  def train(params, opt_state, state, key, batches, noise_std):
    def body(carry, x):
      params, opt_state, key = carry
      key, sub = jax.random.split(key)
      loss, grads = jax.value_and_grad(loss_fn)(params, state, x, sub, noise_std)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, key), loss
    (params, opt_state, key), losses = jax.lax.scan(body, (params, opt_state, key), batches)
    return params, opt_state, key, losses

  return opt, jax.jit(train)


class Contrastive(_MLPBaseline):
  """SimCLR-style NT-Xent on two augmented views of each unlabelled example."""
  name = "contrastive"

  def __init__(self, key, state: dict, base_cfg, ccfg, data_sample: np.ndarray):
    super().__init__(state, base_cfg)
    top = int(base_cfg.top_width)
    width = int(ccfg.projection_width) or top
    key, k1, k2 = jax.random.split(key, 3)
    self.key = key
    self.params = {"body": trainable(state), "proj1": _dense_init(k1, top, width),
                   "proj2": _dense_init(k2, width, width)}
    self.noise_std = float(ccfg.noise_std) * float(np.std(np.asarray(data_sample)))
    self.opt, self._train = _contrastive_train_fn(
        self.activation, self.bn_epsilon, float(ccfg.learning_rate), float(ccfg.temperature),
        float(ccfg.dropout_rate))
    self.opt_state = self.opt.init(self.params)
    self.loss_history: list[float] = []

  def advance(self, unlabelled) -> None:
    if len(unlabelled) == 0:
      return
    self.params, self.opt_state, self.key, losses = self._train(
        self.params, self.opt_state, self.state, self.key, jnp.asarray(unlabelled, jnp.float32),
        jnp.float32(self.noise_std))
    self.loss_history.extend(np.asarray(losses).tolist())
    self.state = with_trainable(self.state, self.params["body"])


# ----------------------------------------------------------------------------- Hebbian / Oja

def oja_step(state: dict, x: jax.Array, lr: float, activation: str, bn_epsilon: float) -> dict:
  """One step of Oja's subspace rule on every layer (inputs from the current forward pass)."""
  _, xs = mlp.forward(state, x, activation, bn_epsilon)
  layers = []
  for layer, inp in zip(state["layers"], xs[:-1]):
    inp = inp - jnp.mean(inp, axis=0, keepdims=True)
    inp = inp * jax.lax.rsqrt(jnp.mean(jnp.sum(jnp.square(inp), axis=1)) + 1e-8)
    w = layer["w"]
    y = inp @ w
    batch = inp.shape[0]
    dw = (inp.T @ y - w @ (y.T @ y)) / batch
    layers.append(dict(layer, w=w + lr * dw))
  return dict(state, layers=tuple(layers))


@functools.lru_cache(maxsize=None)
def _hebbian_train_fn(activation, bn_epsilon, lr):
  def train(state, batches):
    def body(s, x):
      return oja_step(s, x, lr, activation, bn_epsilon), None
    return jax.lax.scan(body, state, batches)[0]
  return jax.jit(train)


class Hebbian(_MLPBaseline):
  """Layer-wise Oja subspace rule: a local, hand-designed Hebbian update."""
  name = "hebbian"

  def __init__(self, state: dict, base_cfg, hcfg):
    super().__init__(state, base_cfg)
    self._train = _hebbian_train_fn(self.activation, self.bn_epsilon, float(hcfg.learning_rate))

  def advance(self, unlabelled) -> None:
    if len(unlabelled) == 0:
      return
    self.state = self._train(self.state, jnp.asarray(unlabelled, jnp.float32))


def make_baseline(name: str, key, state: dict, input_dim: int, base_cfg, bcfg, *,
                  data_sample: np.ndarray, support=None, num_classes: int | None = None,
                  labelled=None):
  """Builds baseline `name` from the shared initial base-model `state`.

  `support` (x, y) is the few-shot support set (supervised); `labelled` (x, y) the whole
  labelled train split (protonet, protonet_permuted).
  """
  if name == "random_init":
    return RandomInit(state, base_cfg)
  if name == "pca":
    return PCA(key, input_dim, int(base_cfg.top_width))
  if name == "vae":
    return VAE(key, state, input_dim, base_cfg, bcfg.vae, data_sample)
  if name == "supervised":
    if support is None or num_classes is None:
      raise ValueError("the supervised baseline needs the labelled support set and num_classes")
    return Supervised(key, state, base_cfg, bcfg.supervised, support[0], support[1], num_classes)
  if name == "contrastive":
    return Contrastive(key, state, base_cfg, bcfg.contrastive, data_sample)
  if name == "hebbian":
    return Hebbian(state, base_cfg, bcfg.hebbian)
  if name in ("protonet", "protonet_permuted"):
    if labelled is None or num_classes is None:
      raise ValueError(f"the {name} baseline needs the labelled train split and num_classes")
    return ProtoNet(key, state, base_cfg, bcfg.protonet, labelled[0], labelled[1], num_classes,
                    permute_eval=name == "protonet_permuted")
  raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")
