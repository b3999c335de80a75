r"""Paper track, continued: a branch of the committed paper-track run at its final update.

The control arm of experiments/paper_track_arms (each other arm is this config plus one setting):
  taskset -c 1 python -m scripts.meta_train --config=configs/paper_track_branch.py \
      --workdir=experiments/paper_track_arms/runs/a_control

What it takes from experiments/paper_track/run (configs/paper_track.py, 2,000 updates): θ, Adam's
state, the update count and the workers' random streams of its checkpoint of update 2,000
(`learner.branch_from`), so every arm starts from one state and draws the same tasks where its
settings let it. What it changes, for every arm alike (each a meta-training setting: the track
stays the paper's):
* Adam at a constant 3e-4 (the parent's schedule had dropped it to 2e-5 by update 1,500, in
  boundaries that were fractions of its length); boundaries are in updates from here on.
* Batches a and b of the meta-objective disjoint on every data set (`task.disjoint_batches`),
  and Omniglot out of the mixture: the paper's ImageNet / Alphabet / CIFAR-10 (with 8 labelled
  examples per class, Omniglot's a and b had come from the same 8).
* Validation every 100 updates on alphabet_val (seeds 1000-1009) by a separate evaluator
  (`validation.mode="async"`): the trainer does not wait for it.
* 400 updates per arm (to update 2,400), a θ snapshot every 50.
"""

from meta_unsup_rules.configs import paper_track


def get_config():
  c = paper_track.get_config()
  c.task.update(dict(datasets=("imagenet", "alphabet", "cifar10"), dataset_weights=(1.0, 1.0, 1.0),
                     disjoint_batches=True))
  c.learner.update(
    dict(
      branch_from="experiments/paper_track/run",
      branch_update=2_000,
      num_updates=2_400,
      learning_rates=(3e-4,),
      lr_boundaries=(),
      lr_boundaries_unit="updates",
      snapshot_every=50,
    )
  )
  c.validation.update(dict(every=100, mode="async"))
  return c
