r"""The README's embedded default: a few minutes of meta-training, then an evaluation.

  python -m scripts.demo

Local rule sizes with one fixed base architecture (2x64+32) so the unroll compiles
once; 6 updates of 4 meta-gradients each (in-process, no Ray). This demonstrates the
pipeline end to end; it is far too short to learn a useful rule (see README Results).
"""
from configs import local


def get_config():
  c = local.get_config()
  c.base_model.hidden_widths = (64, 64)
  c.task.update(dict(depth_min=2, depth_max=2, width_min=64, width_max=64, width_grid=1))
  c.unroll.update(dict(lengths=(5,), horizon_min=20, horizon_max=50))
  c.learner.update(dict(batch_size=4, num_updates=6, checkpoint_every=3))
  c.workers.update(dict(num_workers=1, mode="inprocess"))
  return c
