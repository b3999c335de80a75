r"""Meta-training sized for a 2-core laptop (see the README's Performance section).

Run:
  python -m scripts.meta_train --config=configs/local.py --workdir=runs/local
  python -m scripts.inspect_rule --config=configs/local.py

Sizing (measured with `python -m scripts.inspect_rule`, both cores, float32):
the rule's cost is dominated by the h network, which runs a kernel-3 conv stack
with `compute_h_size` channels on every unit of every layer (the input pixels
included) for every example of the inner batch: cost ∝ batch × Σ units × h².
Halving `compute_h_size` (64 → 32) cuts that ~4x, a batch of 64 instead of 128
another 2x; the released architecture is otherwise unchanged (every term, every
normalisation). Evaluation widths stay the paper's 4×128+32.
"""
from configs import paper


def get_config():
  c = paper.get_config()
  c.rule.update(dict(compute_h_size=32, top_delta_size=32))
  c.meta_objective.num_evaluations = 2
  c.unroll.update(dict(inner_batch_size=64, lengths=(10,), horizon_min=100, horizon_max=2_000))
  c.task.update(dict(depth_min=2, depth_max=4, width_min=64, width_max=256, width_grid=3))
  c.learner.update(dict(batch_size=8, num_updates=5_000, checkpoint_every=10))
  c.workers.num_workers = 2
  return c
