r"""Every hyper-parameter of the paper and of the released code, with its source.

Sources: [P] paper, [S] paper's experiment-setup facts, [C] released TF code,
[ours] a choice where neither says (docs/method.md §9 open points); see README "Provenance".

Run (needs a cluster: 512 workers in the paper):
  python -m scripts.meta_train --config=configs/paper.py --workdir=runs/paper \
      --ray_address=auto
Inspect the rule at Tiny-MNIST shapes (196 inputs, 4x128+32, batch 128, k=5):
  python -m experiments.tools.inspect_rule --config=configs/paper.py

This file is the one source of every setting's value (local.py and tiny.py start from it):
the code reads `cfg.<section>.<field>` and keeps no defaults of its own. Any field is
changed on the command line with `--config.<section>.<field>=value`; each package checks
its section at start (`validate_config`), before anything is written.
"""
import ml_collections


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
      hebb_term="released",                   # [C] the fixed Hebbian ΔW term; "oja" / "oja_centred"
                                              # [ours]: Oja's subspace direction (learned_update/rule.py)
      inner_lr=1e-4,                          # [C][P3] fixed inner step, P <- (1-lr)P - lr ΔP
      step_mode="released",                   # [C] that step; "tangential" [ours]: W and V columns
                                              # turn by ΔP's tangential part only, at most
                                              # angular_step radians, lengths kept
                                              # (learned_update/step_geometry.py)
      angular_step=0.01,                      # [ours] radians per inner step, "tangential" only
      identical_updates=True,                 # [C] V gets exactly W's update; False: own readouts
      h_dtype="float32",                      # [ours] operand dtype of the h network's convs
                                              # (bfloat16: mixed precision, float32 accumulation)
      checkpoint_unroll=True,                 # [ours] jax.checkpoint on the unroll body
      terms=("0_order", "1_order", "decorr_x", "hebb", "large_decay", "lin_lower_symm",
             "lin_upper_psd", "lin_upper_symm", "rbf", "sqr_lower_symm", "sqr_upper_symm",
             "w_base"),                       # [C] the 12 ΔW terms that enter the merge; [ours]
                                              # ablation: leave some out (their weights stay in θ,
                                              # unused; the merge's ÷12 stays)
      feedback="separate",                    # [C] top-down signal through V; "transpose" [ours]:
                                              # through W (no separate feedback weights)
      unit_mixing=True,                       # [C] unit-axis convs + sin/cos unit IDs in the h
                                              # network; False [ours]: off (the rule becomes
                                              # equivariant to permuting a hidden layer's units)
      top_delta="learned",                    # [C] the learned top-down signal; "zero" [ours]
      implementation="fused",                 # [ours] "fused": hand-written VJPs, meta-gradients
                                              # 1.29x faster (learned_update/fused.py, docs/performance.md);
                                              # "reference": the released numerics by autodiff (equal to
                                              # float rounding; θ exports keep the one they were trained with)
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
      target_centring="joint",                # [P3][C] one-hot and augmentation columns centred and
                                              # scaled together; "per_group" [ours]: each group on its
                                              # own, the augmentation group then scaled by
      augmentation_weight=1.0,                #   this weight (0: as targets="labels"); "joint": 1 only
      reduction="mean",                       # [ours] over the k states of an unroll ([P]: sum)
  ))

  # Truncated unrolls (docs/method.md §4; the distributions are not given: [ours]).
  c.unroll = ml_collections.ConfigDict(dict(
      inner_batch_size=128,                   # [C] eval batch (meta-training value not given)
      lengths=(5, 10, 20),                    # [ours] k ~ uniform over these per truncation
                                              # (few distinct k: each compiles once)
      horizon_min=100,                        # [ours] total inner steps per task, log-uniform
      horizon_max=10_000,                     # (the released evaluation runs 3,000 steps)
      estimator="tbptt",                      # [ours] "tbptt" (the paper's truncated backprop) or "pes";
                                              # "hybrid": both, inverse-variance weighted
      pes_sigma=0.01,                         # [ours] std of PES's perturbations of θ
      pes_pairs=1,                            # [ours] antithetic pairs per truncation
      stagger_first_task=False,               # [ours] True: each worker's first task starts at a
                                              # random inner step (PES: pairs start there, ξ = 0)
  ))

  # Central learner.
  c.learner = ml_collections.ConfigDict(dict(
      batch_size=256,                         # [S] meta-gradients averaged per update
      num_updates=200_000,                    # [S] ~200k updates in 8 days
      learning_rates=(3e-4, 1e-4, 2e-5),      # [S]
      lr_boundaries=(100_000, 150_000),       # [S] 100k and 150k of 200k updates
      lr_boundaries_unit="updates",           # [ours] "updates": absolute, so extending a run never
                                              # moves its past; "fraction": of num_updates (how runs
                                              # stored before this field counted them)
      mixing_lr_multiplier=1.0,               # [ours] Adam rate of the ΔW mixing weights (each
                                              # `merge`) as a multiple of the rate of the rest of θ;
                                              # ≠ 1: two Adams (optax.multi_transform)
      clip_norm=5.0,                          # [S]
      adam_b1=0.9,                            # [ours] Adam defaults (not given)
      adam_b2=0.999,
      adam_eps=1e-8,
      max_staleness=4,                        # [ours] drop gradients from θ older than this
      checkpoint_every=100,                   # [ours] updates between checkpoints
      keep_checkpoints=3,                     # [ours]
      checkpoint_worker_tasks=True,           # [ours] in-process workers' tasks and base models in the
                                              # checkpoint (exact resume); False keeps their RNGs only
                                              # (~0.3 MB instead of ~4: resumed workers start new,
                                              # staggered tasks)
      snapshot_every=0,                       # [ours] θ-only exports kept for held-out curves (0: none)
      init_theta="",                          # [ours] θ export a new run starts from ("": init_theta(seed))
      branch_from="",                         # [ours] another run's workdir a new run starts from: θ,
                                              # step, counters, Adam state (fresh if its structure
                                              # differs) and the workers' random streams of
      branch_update=-1,                       #   its checkpoint of this update (-1: its newest)
      require_clean_start=True,               # [ours] refuse an init_theta whose lineage touched a test
                                              # task or ran without the holdout (distributed/provenance.py)
  ))

  c.workers = ml_collections.ConfigDict(dict(
      num_workers=512,                        # [P3]
      mode="ray",                             # "ray" (actors) or "inprocess" (no Ray: debugging, tests)
      ray_address="",                         # "" = start a local Ray; "auto" or host:port = join a cluster
      cpus_per_worker=1,                      # [ours] one pinned core per actor
      gpus_per_worker=0,                      # [ours] accelerators per actor (Ray num_gpus): 1 gives each
                                              # actor a device of its own (with jax_platforms="")
      jax_platforms="cpu",                    # [ours] actors compute on CPU cores
                                              # ("" = JAX's choice, e.g. one GPU each)
      tasks_per_call=1,                       # [ours] tasks a worker advances in one compiled call
                                              # (vmap; N > 1 fills an accelerator, on CPU N = 1 is
                                              # faster: distributed/worker.py, docs/performance.md)
      result_timeout_sec=600.0,               # [ours] a worker silent this long is restarted
      max_consecutive_errors=3,               # [ours] a worker that raises starts over on a fresh task;
                                              # the run stops (exit 2) once every worker raised the
                                              # same error (type and message) this often in a row (0: never)
  ))

  # Meta-training task distribution (docs/method.md §5; tasks/meta_train.py documents every field;
  # untagged values are the ones that module has always used, see docs/data.md).
  c.task = ml_collections.ConfigDict(dict(
      datasets=("imagenet", "alphabet", "cifar10"),  # [P] the 160 Tiny-ImageNet meta-training
                                              # classes, rendered fonts, CIFAR-10; also known:
                                              # omniglot, mnist, fashion_mnist (train splits)
      dataset_weights=(1.0, 1.0, 1.0),        # sampling weight per data set (equal)
      image_size=16,                          # inputs resized to 16x16
      greyscale=True,                         # colour -> BT.601 luma: 256 inputs per task
      resize_method="area",                   # "area" (averaging) or "bilinear"
      num_classes_choices=(10,),              # classes per task (capped at the data set's)
      samples_per_class=c.meta_objective.get_ref("samples_per_class"),  # labelled batches a, b
      depth_min=2,                            # hidden layers ~ uniform {depth_min..depth_max}
      depth_max=5,
      width_min=64,                           # width log-uniform in [width_min, width_max]
      width_max=512,
      top_width=c.base_model.get_ref("top_width"),  # the top layer is always the base model's
      per_layer_widths=False,                 # one width for every hidden layer
      width_grid=8,                           # [ours] widths on 8 log-spaced values (fewer
                                              # compiled shapes); 0: continuous, rounded
      augment=True,                           # [P] shift, rotation, noise + their targets
      max_shift=2.0,                          # pixels (of 16)
      max_rotation=15.0,                      # degrees
      max_noise=0.1,                          # additive Gaussian std, pixel range [0, 1]
      disjoint_batches=True,                  # [ours] batches a and b never share an example, also
                                              # when a class has < 2 x samples_per_class labelled ones
                                              # (each draws from its own half); False: drawn
                                              # independently (Omniglot: from the same 8)
      labelled_fraction=0.4,                  # per class: labelled part (the meta-objective's
                                              # batches), the rest feeds the inner loop
      split_seed=0,                           # seed of the fixed labelled/unlabelled split
      validation_holdout=False,               # [ours] True: the 40 meta-validation Tiny-ImageNet
                                              # classes (i % 5 == 3) leave `imagenet` (120 left)
                                              # and form the task imagenet_val θ is selected on
      validation_holdout_sources=("imagenet", "alphabet"),  # [ours] the sources the holdout
                                              # applies to (omniglot: 40 characters, omniglot_val)
  ))
  c.data_dir = ""                             # "" = $META_UNSUP_DATA_DIR or ../shared/data

  # Meta-validation during meta-training (distributed/trainer.py; checks in
  # distributed/settings.py): every `every` updates and at the last one, the learner's θ is
  # evaluated with the learned method only, with the `evaluation` section's protocol
  # settings on this section's task, seeds and steps, on the config's `base_model`; the best
  # θ (mean accuracy) is exported to <workdir>/best/. Never a test task.
  c.validation = ml_collections.ConfigDict(dict(
      every=0,                                # [ours] updates between validations; 0: off
      task="imagenet_val",                    # [ours] needs task.validation_holdout when
                                              # imagenet is meta-trained on
      seeds=10,                               # [ours] seeds seed, seed + 1, ...
      inner_steps=1_000,                      # [ours] unlabelled inner steps per seed
      eval_every=1_000,                       # [ours] steps between readouts (the last counts)
      seed=1_000,                             # [ours] first seed: distinct from test seeds 0-9
      readout="ridge",                        # [ours] the readout whose mean accuracy selects θ
      mode="inline",                          # [ours] "inline": the trainer validates (and waits);
                                              # "async": it writes a snapshot at each due update and an
                                              # evaluator process scores it (distributed/evaluator.py)
      evaluator_cpus="",                      # [ours] async: the evaluator's CPUs ("0", "0,2-3"; "": all)
  ))

  # Evaluation (docs/method.md §6–7): every evaluating command (scripts.evaluate, sweep, demo;
  # experiments.tools.heldout_curve, rule_geometry, feature_figures) reads this section through
  # evaluation/evaluation_setup.py; their flags (--task, --inner_steps, ...) are aliases of these fields
  # (scripts/config_args.py). Settings the paper does not give are [ours]; the protocols are
  # documented in evaluation/protocols.py.
  c.evaluation = ml_collections.ConfigDict(dict(
      task="tiny_mnist",                      # one of tasks.eval_tasks.EVAL_TASKS, or your own data:
                                              # "npz:PATH" / "folder:PATH" (tasks/own_data.py)
      theta="random",                         # θ export directory, or "random": init_theta(seed)
      inner_steps=1_000,                      # [ours] unlabelled minibatches per run (N)
      eval_every=0,                           # steps between readouts (M); 0: max(1, N // 5)
      seeds=3,                                # seeds cfg.seed, cfg.seed + 1, ...
      methods=("learned", "random_init", "raw_input", "pca", "vae", "supervised", "contrastive",
               "hebbian", "protonet", "protonet_permuted"),  # evaluation.runner.METHODS, in table order
      support_per_class=10,                   # [P] Fig. 4: labelled examples per class
      own_image_size=16,                      # [ours] folder:PATH images are resized to this square:
                                              # the meta-training input size (task.image_size)
      own_greyscale=True,                     # [ours] folder:PATH images -> BT.601 grey, as in
                                              # meta-training (False: RGB, 3x the inputs)
      max_test=2_000,                         # [ours] test examples scored (fixed seeded subset)
      test_chunk=500,                         # [ours] minimum BN batch for test features
      logistic_c=1.0,                         # [C] sklearn-style C of the logistic readout
      protocol="fewshot",                     # [P]; or episodic, linear_probe, semi_supervised
      n_way=5,                                # [ours] episodic: N-way K-shot episodes,
      k_shot=10,                              #   n_query queries per class,
      n_query=15,
      episodes=50,                            #   per seed and evaluation point
      probe_max_train=10_000,                 # [ours] linear_probe: labelled train examples, at most
      label_fractions=(0.01, 0.1),            # [ours] semi_supervised: fractions of class labels
      batch_seeds="threads",                  # [ours] how the seeds run (evaluation/runner.py):
                                              # "threads": concurrently, one thread per core (the same
                                              # numbers, bit for bit; 1.3-1.6x faster on 2 cores);
                                              # "vmap": in lockstep, each method's computation vmapped
                                              # over the seeds (evaluation/batched.py; equal to float
                                              # rounding; slower than "off" on CPU, meant for
                                              # accelerators); "off": one after another (the reference)
  ))

  # Baselines (docs/method.md §6: the paper's settings were in an unavailable appendix, so every value
  # is [ours]; base_models/baselines/ documents each method).
  c.baselines = ml_collections.ConfigDict(dict(
      vae=dict(
          learning_rate=1e-3,                 # Adam (brief)
          latent_dim=0,                       # 0: base_model.top_width
          likelihood="auto",                  # bernoulli if the data lie in [0, 1], else gaussian
          kl_weight=1.0,                      # plain ELBO
          decoder_init_scale=1.0,             # decoder weights ~ N(0, scale²/fan_in)
      ),
      supervised=dict(
          learning_rate=1e-3,                 # Adam, full batch on the support set
          max_steps=2_000,
          check_every=50,                     # steps between checks of the training accuracy
          target_accuracy=1.0,                # stop once reached
      ),
      contrastive=dict(
          learning_rate=1e-3,                 # Adam
          temperature=0.5,                    # NT-Xent τ
          noise_std=0.2,                      # additive noise, in units of the data's global std
          dropout_rate=0.2,                   # probability of zeroing an input feature per view
          projection_width=0,                 # 0: base_model.top_width (head's hidden and output)
      ),
      hebbian=dict(
          learning_rate=0.2,                  # Oja η, unit-mean-square inputs (stable for η < 1)
      ),
      protonet=dict(                          # also used by protonet_permuted
          learning_rate=1e-3,                 # Adam
          n_way=5,                            # classes per training episode (capped at the task's)
          k_shot=10,                          # support per class (as evaluation.support_per_class)
          n_query=15,                         # queries per class (Snell et al.)
          steps_per_inner_step=1,             # episodes (Adam steps) per unlabelled minibatch
      ),
  ))
  return c
