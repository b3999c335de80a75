r"""A tiny configuration for CI and tests: same code paths, minute-scale sizes.

Run:
  python -m scripts.meta_train --config=configs/tiny.py --workdir=runs/tiny
  python -m experiments.tools.inspect_rule --config=configs/tiny.py
  python -m scripts.meta_train --config=configs/tiny.py --workdir=runs/tiny_val \
      --config.validation.every=2      # with meta-validation on imagenet_val (best/ export)
"""
from meta_unsup_rules.configs import paper


def get_config():
  c = paper.get_config()
  c.base_model.hidden_widths = (24, 24)
  c.base_model.top_width = 8
  c.rule.update(dict(top_delta_size=8, top_delta_layers=1, compute_h_size=8,
                     compute_h_layers=1, delta_dim=8, num_grad_channels=2))
  c.meta_objective.num_evaluations = 2
  c.meta_objective.samples_per_class = 4
  c.unroll.update(dict(inner_batch_size=16, lengths=(2,), horizon_min=4, horizon_max=8))
  c.task.update(dict(datasets=("omniglot",), dataset_weights=(1.0,), image_size=8,
                     num_classes_choices=(3,), depth_min=2, depth_max=2, width_min=16,
                     width_max=24, width_grid=2))
  c.learner.update(dict(batch_size=2, num_updates=4, checkpoint_every=2, max_staleness=2))
  c.workers.update(dict(num_workers=1, mode="inprocess"))
  # imagenet_val at seconds' cost; off (every=0) because the first validation compiles for
  # ~20 s, which every tiny meta-training test would pay: tests turn it on with every=2.
  c.validation.update(dict(every=0, seeds=2, inner_steps=4, eval_every=4))
  return c
