"""Checks of the baseline settings, `cfg.baselines` (values: configs/paper.py, all [ours]).

The section is validated once at start, so a bad value stops the evaluation before any
method has run, instead of failing inside one baseline after the others have finished.
"""

from __future__ import annotations

from meta_unsup_rules.util.config_check import ConfigError, Section

# One per trained baseline (protonet_permuted uses protonet's; random_init and pca have none).
SECTIONS = ("vae", "supervised", "contrastive", "hebbian", "protonet")


def _section(bcfg, name: str) -> Section:
  if name not in bcfg:
    raise ConfigError(f"baselines.{name}", None, "a section of settings (configs/paper.py)")
  return Section(bcfg[name], f"baselines.{name}")


def validate_config(bcfg) -> None:
  """Checks the `baselines` section (raises util.config_check.ConfigError)."""
  from meta_unsup_rules.base_models.baselines.vae import LIKELIHOODS  # pylint: disable=g-import-not-at-top

  for name in SECTIONS:
    _section(bcfg, name).positive("learning_rate")
  vae = _section(bcfg, "vae")
  vae.int_at_least("latent_dim", 0)  # 0: base_model.top_width
  vae.one_of("likelihood", LIKELIHOODS)
  vae.number("kl_weight", lo=0.0)
  vae.positive("decoder_init_scale")
  supervised = _section(bcfg, "supervised")
  supervised.int_at_least("max_steps", 0)
  supervised.int_at_least("check_every", 1)
  supervised.number("target_accuracy", lo=0.0, hi=1.0)
  contrastive = _section(bcfg, "contrastive")
  contrastive.positive("temperature")
  contrastive.number("noise_std", lo=0.0)
  contrastive.number("dropout_rate", lo=0.0, hi=1.0, hi_open=True)
  contrastive.int_at_least("projection_width", 0)  # 0: base_model.top_width
  protonet = _section(bcfg, "protonet")
  protonet.int_at_least("n_way", 2)  # capped at the task's classes
  for name in ("k_shot", "n_query", "steps_per_inner_step"):
    protonet.int_at_least(name, 1)
