r"""Paper track: the paper's method meta-trained from the untrained θ, sized for one core.

Run (one core, resumable; the committed run state lives in experiments/paper_track/run):
  taskset -c 1 python -m scripts.meta_train --config=configs/paper_track.py \
      --workdir=experiments/paper_track/run

What is the paper's (unchanged from configs/paper.py): the released rule family (every ΔW
term with the released Hebbian term, the released step), the ridge meta-objective, truncated
backprop through the unrolled inner loop, Adam with the paper's 3e-4 → 1e-4 → 2e-5 schedule
(boundaries at updates 1,000 and 1,500: the run stored them as fractions 1/2 and 3/4 of its 2,000),
θ from `init_theta(seed)`: no hand-set start and no ancestor.

Meta-training settings, chosen on validation (alphabet_val) in earlier runs, never on a test
task (each is a setting the paper leaves free or that its compute fixed):
* The sizes of configs/local.py (h network 32 channels, inner batch 32, base models of depth
  2–3 and widths 64–128 during meta-training, two ridge evaluations per state, inner step
  1e-3, the four-dataset mixture with Omniglot).
* Adam ≤ 3e-4: every arm at 1e-3 collapsed; 3e-4 held (docs/diagnostics.md).
* Horizons of 1,000–3,000 inner steps with staggered worker phases
  (`unroll.stagger_first_task`): the evaluation runs 1,000 steps, and short horizons gave a
  biased objective that the first run collapsed on.
* Learner batch 8, in-process workers on one core (the other core validates and tests).
* The validation holdout from update 0, on Omniglot too, so that the 40 Omniglot
  meta-validation characters (`omniglot_val`) stay unseen: alphabet_val selects θ online
  (every 100 updates); the θ snapshots (every 50) can be scored on omniglot_val afterwards,
  and the validation task is the one with the better signal-to-noise over the run.
* Checkpoints without the workers' tasks (`learner.checkpoint_worker_tasks=False`), so the
  committed run state stays small (~0.3 MB, not ~4 MB): a resume starts the 8 workers on new,
  staggered tasks from their saved RNGs instead of continuing the interrupted ones.
"""

from meta_unsup_rules.configs import local


def get_config():
  c = local.get_config()
  c.unroll.update(dict(horizon_min=1_000, horizon_max=3_000, stagger_first_task=True))
  c.task.validation_holdout_sources = ("imagenet", "alphabet", "omniglot")
  c.learner.update(
    dict(
      num_updates=2_000,
      learning_rates=(3e-4, 1e-4, 2e-5),
      lr_boundaries=(1_000, 1_500),
      checkpoint_every=10,
      keep_checkpoints=2,
      checkpoint_worker_tasks=False,
      snapshot_every=50,
    )
  )
  c.validation.update(dict(every=100, task="alphabet_val"))
  c.workers.update(dict(mode="inprocess", num_workers=8))
  return c
