"""A learned rule from Python: load θ, build a base model, train it on your unlabelled data, read it out.

  from meta_unsup_rules.learned_update import api
  rule = api.load_rule("ojac_hand_clean")              # a release (in checkpoints/) or an export's path
  model = api.init_model(rule, input_dim=x.shape[1])   # the rule's base model (4×128 + 32 here)
  model = api.train(rule, model, x, steps=1000)        # unlabelled minibatches, jitted, progress bar
  f = api.features(model, x_test)                      # top-layer features, [N, top_width]
  accuracy = api.score_readout(model, x_support, y_support, x_test, y_test)   # ridge readout

Inputs are float arrays [N, D] (or [N, ...], flattened), scaled as you would feed a network (the
project's tasks use pixels in [0, 1]). `train` takes an array, from which it draws seeded minibatches
of the rule's inner batch size, or an iterable of [B, D] batches. Everything runs the code that
meta-training and scripts.evaluate run (learned_update.rule, base_models.mlp, the ridge readout of
meta_objective.logistic); nothing here reads the data directory.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from meta_unsup_rules.base_models import mlp
from meta_unsup_rules.learned_update import export, releases, unroll
from meta_unsup_rules.meta_objective import logistic
from meta_unsup_rules.util import progress

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASES_DIR = releases.RELEASES_DIR
release_names = releases.release_names
_CHUNK_STEPS = 50  # inner steps per jitted scan: one compile, a progress update every chunk


@dataclasses.dataclass(frozen=True)
class Rule:
  """A meta-trained (or exported) θ and the config it was trained with."""

  theta: dict
  config: ml_collections.ConfigDict  # rule, base_model, unroll, meta_objective, ... sections
  summary: dict | None  # the export's summary.json (updates, lineage, track), if any
  path: pathlib.Path

  @property
  def batch_size(self) -> int:
    """Unlabelled examples per inner step (the meta-training inner batch)."""
    return int(self.config.unroll.inner_batch_size)


@dataclasses.dataclass(frozen=True)
class Model:
  """A base model's state and the config that builds and steps it (the rule's, with its base_model)."""

  state: dict
  config: ml_collections.ConfigDict
  steps: int = 0  # inner steps applied so far


def load_rule(name_or_path: str | os.PathLike) -> Rule:
  """θ of an export directory, or of a release: a folder name under checkpoints/ ("ojac_hand_clean").

  Raises learned_update.ExportError when neither names an export (with the release names).
  """
  path = releases.export_dir(name_or_path)
  if not (path / "theta.npz").is_file():
    raise export.ExportError(
      f"{name_or_path!s}: not a θ export directory (theta.npz, config.json) nor a release name; "
      f"releases: {', '.join(release_names()) or 'none found'} (in {RELEASES_DIR})"
    )
  theta, cfg, summary = export.load_theta(path)
  return Rule(jax.tree_util.tree_map(jnp.asarray, theta), cfg, summary, path)


def init_model(
  rule: Rule,
  input_dim: int,
  hidden_widths: Sequence[int] | None = None,
  seed: int = 0,
  activation: str | None = None,
  permute_inputs: bool | None = None,
) -> Model:
  """A fresh base model for inputs of `input_dim` features: the rule's architecture, or
  `hidden_widths` hidden layers (the top width is the rule's: its top-delta network reads it)."""
  cfg = ml_collections.ConfigDict(rule.config.to_dict())
  base = cfg.base_model
  if hidden_widths is not None:
    widths = tuple(int(w) for w in hidden_widths)
    if not widths or min(widths) < 1:
      raise ValueError(f"hidden_widths must be positive integers, got {tuple(hidden_widths)}")
    base.hidden_widths = widths
  if activation is not None:
    mlp.activation_fn(activation)  # raises ValueError naming the known ones
    base.activation = activation
  if permute_inputs is not None:
    base.permute_inputs = bool(permute_inputs)
  if int(input_dim) < 1:
    raise ValueError(f"input_dim must be at least 1, got {input_dim}")
  unroll.validate_compatible(cfg)
  state = mlp.init(jax.random.PRNGKey(seed), int(input_dim), mlp.layer_widths(base), base)
  return Model(state, cfg)


def _flat(x, input_dim: int | None = None, what: str = "x") -> np.ndarray:
  x = np.asarray(x, np.float32)
  if x.ndim < 2:
    raise ValueError(f"{what} must be [N, D] (or [N, ...]); got shape {x.shape}")
  x = x.reshape(len(x), -1)
  if input_dim is not None and x.shape[1] != input_dim:
    raise ValueError(f"{what} has {x.shape[1]} features per example; the model expects {input_dim}")
  return x


def _input_dim(model: Model) -> int:
  return int(model.state["perm"].shape[0])


def _batches(data, steps: int, batch_size: int, seed: int, input_dim: int):
  """`steps` minibatches: drawn with replacement of rows from an array, or taken from an iterable."""
  if isinstance(data, (np.ndarray, jax.Array)):
    x = _flat(data, input_dim, "the unlabelled data")
    rng = np.random.default_rng(seed)
    for _ in range(steps):
      yield x[rng.integers(0, len(x), batch_size)]
    return
  taken = 0
  for batch in data:
    if taken == steps:
      return
    yield _flat(batch, input_dim, "an unlabelled batch")
    taken += 1
  if taken < steps:
    raise ValueError(f"the batches ran out after {taken} of {steps} steps")


def train(
  rule: Rule,
  model: Model,
  data: np.ndarray | Iterable,
  steps: int,
  seed: int = 0,
  batch_size: int | None = None,
  show_progress: bool = True,
) -> Model:
  """`model` after `steps` applications of the rule on unlabelled minibatches of `data`.

  `data`: an array [N, D] (minibatches of `batch_size`, default the rule's inner batch, drawn with
  `seed`), or an iterable of [B, D] batches, used in order. Steps run jitted, `_CHUNK_STEPS` per scan.
  """
  steps = int(steps)
  if steps < 0:
    raise ValueError(f"steps must be >= 0, got {steps}")
  batch_size = rule.batch_size if batch_size is None else int(batch_size)
  if batch_size < 2:
    raise ValueError(f"batch_size must be at least 2 (batch norm over the batch), got {batch_size}")
  apply_rule = unroll.make_unroll_fns(model.config).apply_rule
  state = model.state
  bar = progress.bar(steps, "train", unit="step", enabled=show_progress)
  chunk = []
  for i, batch in enumerate(_batches(data, steps, batch_size, seed, _input_dim(model))):
    chunk.append(batch)
    if len(chunk) == _CHUNK_STEPS or i == steps - 1:
      shapes = {b.shape for b in chunk}
      if len(shapes) > 1:
        raise ValueError(f"unlabelled batches of one call must share a shape; got {sorted(shapes)}")
      state = apply_rule(rule.theta, state, jnp.asarray(np.stack(chunk)))
      bar.update(len(chunk))
      chunk = []
  bar.close()
  return Model(jax.block_until_ready(state), model.config, model.steps + steps)


def features(model: Model, x, chunk: int | None = None) -> np.ndarray:
  """Top-layer features [N, top_width]. Batch norm uses the statistics of the batch fed: all of `x`,
  or near-equal chunks of at least `chunk` rows (scripts.evaluate: evaluation.test_chunk)."""
  x = _flat(x, _input_dim(model))
  base = model.config.base_model
  fn = jax.jit(lambda s, b: mlp.features(s, b, base.activation, base.bn_epsilon))
  parts = np.array_split(x, max(1, len(x) // int(chunk))) if chunk else [x]
  return np.concatenate([np.asarray(fn(model.state, jnp.asarray(p))) for p in parts], axis=0)


def score_readout(model: Model, x_support, y_support, x_test, y_test, ridge_lambda: float = 0.1) -> float:
  """Test accuracy of the ridge readout (the evaluation's: one-hot targets, λ = 0.1) fitted on
  the support set's features."""
  y_support, y_test = np.asarray(y_support, np.int64), np.asarray(y_test, np.int64)
  if len(y_support) != len(x_support) or len(y_test) != len(x_test):
    raise ValueError("each labels array must have one label per example of its inputs")
  if min(y_support.min(initial=0), y_test.min(initial=0)) < 0:
    raise ValueError("labels must be integers 0, 1, ..., num_classes - 1")
  num_classes = int(max(y_support.max(initial=0), y_test.max(initial=0))) + 1
  f_support, f_test = features(model, x_support), features(model, x_test)
  return logistic.ridge_accuracy(f_support, y_support, f_test, y_test, num_classes, ridge_lambda)
