"""The files of a meta-training workdir, named in one place (who writes each says so).

metrics.jsonl       the trainer: one record per update (truncated to the checkpoint on resume)
validation.jsonl    the evaluator (validation.mode = "async"): one record per scored snapshot
checkpoint_*.npz    the trainer (distributed/checkpoint.py)
snapshots/step_N/   the trainer: θ-only exports (every learner.snapshot_every, and at due
                    validations in async mode)
best/               whoever validates: the best θ by validation so far
theta/              the trainer: θ at the end of a session
config.json         the trainer: the run's config (its first session's; see its history)
trainer.lock        the trainer, while it runs (one trainer per workdir)
evaluator.lock      the evaluator, while it runs (one evaluator per workdir)
evaluator.log       the evaluator's output when the trainer started it
"""

METRICS = "metrics.jsonl"
VALIDATION = "validation.jsonl"
SNAPSHOTS = "snapshots"
BEST = "best"
THETA = "theta"
CONFIG = "config.json"
TRAINER_LOCK = "trainer.lock"
EVALUATOR_LOCK = "evaluator.lock"
EVALUATOR_LOG = "evaluator.log"
