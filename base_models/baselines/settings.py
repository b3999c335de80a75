"""Baseline hyper-parameters, `cfg.baselines` (spec §6: the paper's were in an unavailable
appendix, so every value here is [ours])."""
from __future__ import annotations

import ml_collections


def default_baseline_config() -> ml_collections.ConfigDict:
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
