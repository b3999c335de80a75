r"""Extension track [ours]: meta-training with Oja's subspace direction as the rule's Hebbian term,
from a clean hand-set start (control (c) of experiments/oja_variant).

Run (one core):
  taskset -c 1 python -m scripts.meta_train --config=configs/oja.py \
      --workdir=experiments/oja_variant/clean_run

Against configs/local.py (each choice made on alphabet_val, never on a test task):
* [ours] `rule.hebb_term="oja_centred"`: the fixed Hebbian term of the ΔW family is Oja's
  subspace direction (Hebbian growth plus decorrelation between units) on centred inputs.
* [ours] θ starts from `checkpoints/ojac_hand_clean`: the untrained θ with every ΔW mixing weight
  zero except `hebb` = 1 and the bias readout zeroed; inner step 0.3, chosen among 0.03–1.0
  (alphabet_val 0.702 ± 0.008 before meta-training; experiments/oja_variant/README.md).
* Adam at a constant 3e-4 (the paper's rate): at 1e-3 every arm from θ@400 collapsed.
* Horizons of 1,000–3,000 inner steps with staggered worker phases, as configs/paper_track.py.
* 8 in-process workers (one core), a θ snapshot every 25 updates (validation as in local.py).
"""

from meta_unsup_rules.configs import local


def get_config():
  c = local.get_config()
  c.rule.update(dict(hebb_term="oja_centred", inner_lr=0.3))
  c.unroll.update(dict(horizon_min=1_000, horizon_max=3_000, stagger_first_task=True))
  c.learner.update(
    dict(init_theta="checkpoints/ojac_hand_clean", learning_rates=(3e-4, 3e-4, 3e-4), snapshot_every=25)
  )
  c.workers.update(dict(mode="inprocess", num_workers=8))
  return c
