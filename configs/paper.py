r"""Every hyper-parameter of the paper and of the released code, with its source.

Sources: [P] paper, [S] paper's experiment-setup facts, [C] released TF code,
[ours] a choice where neither says (spec §9 open points); see README "Provenance".

Run (needs a cluster: 512 workers in the paper):
  python -m scripts.meta_train --config=configs/paper.py --workdir=runs/paper \
      --ray_address=auto
Inspect the rule at Tiny-MNIST shapes (196 inputs, 4x128+32, batch 128, k=5):
  python -m scripts.inspect_rule --config=configs/paper.py
"""
import ml_collections

from base_models import baselines
from evaluation import protocols
from tasks import meta_train


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0                                  # [ours]

  # Base model (evaluated default; meta-training samples architectures, see `task`).
  c.base_model = ml_collections.ConfigDict(dict(
      hidden_widths=(128, 128, 128, 128),     # [C] inner_size=128, n_layers=4
      top_width=32,                           # [C] output_size=32
      activation="relu",                      # [P][C] ReLU, top layer included
      permute_inputs=True,                    # [P][C] fixed random permutation per instance
      w_init_std=0.01,                        # [C] truncated normal
      b_init_std=0.1,                         # [C] truncated normal, offset after BN
      bn_epsilon=1e-6,                        # [C]
  ))

  # The learned update rule θ (released `MoreLocalWeightUpdateProcess` defaults).
  c.rule = ml_collections.ConfigDict(dict(
      top_width=c.base_model.get_ref("top_width"),  # [C] top-delta net mixes the 32 top units
      top_delta_size=64,                      # [C]
      top_delta_layers=2,                     # [C]
      top_delta_kernel=5,                     # [C] first batch-axis conv
      kernel_size=3,                          # [C] every other conv
      compute_h_size=64,                      # [C]
      compute_h_layers=1,                     # [C]
      delta_dim=32,                           # [C]
      num_grad_channels=4,                    # [C]
      normalize_epsilon=1.0,                  # [C] per-column normalisation of ΔW terms
      theta_bn_epsilon=1e-3,                  # [C] Sonnet v1 BatchNorm default
      mixing_init=0.1,                        # [C] learned mixing weights of the 12 terms
      anti_collapse_scale=1.0 / 7.0,          # [C] ΔW -= ŵ/7
      inner_lr=1e-4,                          # [C][P3] fixed inner step, P <- (1-lr)P - lr ΔP
      identical_updates=True,                 # [C] V gets exactly W's update; False: own readouts
      h_dtype="float32",                      # [ours] operand dtype of the h network's convs (bfloat16: mixed precision, float32 accumulation)
      checkpoint_unroll=True,                 # [ours] jax.checkpoint on the unroll body
  ))

  # Few-shot ridge meta-objective.
  c.meta_objective = ml_collections.ConfigDict(dict(
      loss="cosine",                          # [P] CosDist; "released" = [C] squared error + ridge term
      ridge_lambda=0.1,                       # [S][C]
      num_evaluations=5,                      # [S] average of 5 evaluations ([C] default: 1)
      samples_per_class=10,                   # [C]
      center_targets=True,                    # [P3][C]
      normalize_predictions=True,             # [P3][C]
      targets="labels_and_augmentation",      # [P][C] one-hot + augmentation regression targets;
                                              # "labels": one-hot only ([ours] ablation)
      reduction="mean",                       # [ours] over the k states of an unroll ([P]: sum)
  ))

  # Truncated unrolls (spec §4; the distributions are not given: [ours]).
  c.unroll = ml_collections.ConfigDict(dict(
      inner_batch_size=128,                   # [C] eval batch (meta-training value not given)
      lengths=(5, 10, 20),                    # [ours] k ~ uniform over these per truncation
                                              # (few distinct k: each compiles once)
      horizon_min=100,                        # [ours] total inner steps per task, log-uniform
      horizon_max=10_000,                     # (the released evaluation runs 3,000 steps)
  ))

  # Central learner.
  c.learner = ml_collections.ConfigDict(dict(
      batch_size=256,                         # [S] meta-gradients averaged per update
      num_updates=200_000,                    # [S] ~200k updates in 8 days
      learning_rates=(3e-4, 1e-4, 2e-5),      # [S]
      lr_boundaries=(0.5, 0.75),              # [S] 100k and 150k of 200k, as fractions of num_updates
      clip_norm=5.0,                          # [S]
      adam_b1=0.9,                            # [ours] Adam defaults (not given)
      adam_b2=0.999,
      adam_eps=1e-8,
      max_staleness=4,                        # [ours] drop gradients from θ older than this
      checkpoint_every=100,                   # [ours] updates between checkpoints
      keep_checkpoints=3,                     # [ours]
      snapshot_every=0,                       # [ours] θ-only exports kept for held-out curves (0: none)
      init_theta="",                          # [ours] θ export a new run starts from ("": init_theta(seed))
  ))

  c.workers = ml_collections.ConfigDict(dict(
      num_workers=512,                        # [P3]
      mode="ray",                             # "ray" (actors) or "inprocess" (no Ray: debugging, tests)
      ray_address="",                         # "" = start a local Ray; "auto" or host:port = join a cluster
      cpus_per_worker=1,                      # [ours] one pinned core per actor
      jax_platforms="cpu",                    # [ours] actors compute on CPU cores ("" = JAX's choice, e.g. one GPU each)
      result_timeout_sec=600.0,               # [ours] a worker silent this long is restarted
      max_consecutive_errors=3,               # [ours] a worker that raises starts over on a fresh task;
                                              # the run stops (exit 2) once every worker raised the
                                              # same error (type and message) this often in a row (0: never)
      fault_injection="",                     # tests only: "raise_once" / "raise_always", optionally
                                              # ":worker=N" (see distributed/worker.py); "" = off
  ))

  # Meta-training task distribution (spec §5; tasks/meta_train.py documents every field).
  c.task = meta_train.default_task_config()
  c.task.samples_per_class = c.meta_objective.get_ref("samples_per_class")
  c.task.top_width = c.base_model.get_ref("top_width")
  c.data_dir = ""

  # Evaluation protocol and baselines (spec §6; settings not given by the paper: [ours],
  # documented in evaluation/protocols.py and base_models/baselines/).
  c.evaluation = protocols.default_evaluation_config()
  c.baselines = baselines.default_baseline_config()                             # "" = $META_UNSUP_DATA_DIR or ../shared/data
  return c
