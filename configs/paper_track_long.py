r"""Paper track, long: the paper's method meta-trained until it stops learning (issue of the long run).

Run in a worktree of its own (the code under it must not change while it runs), one core,
resumable; its committed state lives in experiments/paper_track_long/run:
  git worktree add ../long HEAD && cd ../long
  taskset -c 1 python -m scripts.meta_train --config=configs/paper_track_long.py \
      --workdir=experiments/paper_track_long/run --config.validation.evaluator_cpus=0

What it continues: the control arm of experiments/paper_track_arms (configs/paper_track_branch.py,
Adam at a constant 3e-4 from the paper-track run's update 2,000) at its update 2,400, with its θ,
Adam state, update count and workers' random streams (`learner.branch_from`): the arms' first
rounds found no setting that beats the control (the study's README has the decision), so the
control's state is the best start and nothing it learned needs unlearning.

What it changes (meta-training settings only: the track stays the paper's):
* 6,000 updates in the lineage (48,000 meta-gradients), Adam 3e-4 until update 5,400, then 6e-5
  for the last 10 %, boundaries in updates (extending the run never moves them).
* A θ snapshot every 100 updates, validated by a separate evaluator on alphabet_val (seeds
  1000–1009) with the effective rank of the features: `validation.jsonl` and `best/`.
Everything else as the branch: the paper's ImageNet / Alphabet / CIFAR-10 mixture, batches a and
b disjoint, horizons 1,000–3,000, 8 in-process workers, learner batch 8.
"""

from meta_unsup_rules.configs import paper_track_branch


def get_config():
  c = paper_track_branch.get_config()
  c.learner.update(
    dict(
      branch_from="experiments/paper_track_arms/runs/a_control",
      branch_update=2_400,
      num_updates=6_000,
      learning_rates=(3e-4, 6e-5),
      lr_boundaries=(5_400,),
      lr_boundaries_unit="updates",
      snapshot_every=100,
    )
  )
  return c
