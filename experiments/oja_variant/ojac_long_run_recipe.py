r"""The recipe of experiments/earlier/thetas/ojac_u250 (a tainted comparator: its start carries
θ@400's h network, which was chosen on Tiny MNIST): meta-training from a hand-set rule with Oja's
subspace direction as the family's Hebbian term. Kept so that the run recorded in
experiments/earlier/runs/ojac_long_run stays reproducible; new runs use configs/oja.py (a clean start).

Run (one core; the first command builds the starting θ, ~10 s):
  python -m experiments.tools.hand_rule_theta --base=experiments/earlier/thetas/local --mixing=hebb=1 \
      --inner_lr=0.1 --hebb_term=oja_centred --out=runs/hand/ojac_lr0.1
  taskset -c 1 python -m scripts.meta_train --config=experiments/oja_variant/ojac_long_run_recipe.py \
      --workdir=runs/oja --config.learner.require_clean_start=False

Against configs/local.py (each choice measured on alphabet_val; docs/diagnostics.md, "PES at
scale, and Oja's subspace direction inside the family"):

* [ours] `rule.hebb_term="oja_centred"`: the fixed Hebbian term of the ΔW family is Oja's
  subspace direction (Hebbian growth plus decorrelation between units) on centred inputs.
* [ours] θ starts from a hand-set rule (`learner.init_theta`): θ@400's h network with every ΔW
  mixing weight zero except `hebb` = 1, inner step 0.1 (chosen among 1e-3–0.3 on validation);
  it scores 0.696 ± 0.009 on alphabet_val before meta-training.
* Adam at a constant 3e-4 (the paper's rate): at 1e-3 every arm from θ@400 collapsed.
* Horizons of 1,000–3,000 inner steps (the evaluation runs 1,000) with workers started at
  random inner steps of their first task (`unroll.stagger_first_task`), so the truncations see
  the late inner steps from the first updates on.
* 8 in-process workers (one core), a θ snapshot every 25 updates (validation as in local.py).
"""

from meta_unsup_rules.configs import local


def get_config():
  c = local.get_config()
  # The run computed the rule with the reference implementation (before "fused" was the default).
  c.rule.update(dict(hebb_term="oja_centred", inner_lr=0.1, implementation="reference"))
  c.unroll.update(dict(horizon_min=1_000, horizon_max=3_000, stagger_first_task=True))
  c.learner.update(
    dict(
      init_theta="runs/hand/ojac_lr0.1",
      learning_rates=(3e-4, 3e-4, 3e-4),
      snapshot_every=25,
      lr_boundaries=(0.5, 0.75),
      lr_boundaries_unit="fraction",
    )
  )
  # Settings added after the run, at the values that reproduce it.
  c.meta_objective.update(dict(target_centring="joint", augmentation_weight=1.0))
  c.task.disjoint_batches = False
  c.task.validation_holdout_sources = ("imagenet", "alphabet")
  c.learner.update(
    dict(checkpoint_worker_tasks=True, mixing_lr_multiplier=1.0, branch_from="", branch_update=-1)
  )
  c.validation.mode = "inline"
  c.workers.update(dict(mode="inprocess", num_workers=8))
  return c
