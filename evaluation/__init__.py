"""Evaluation of update rules and baselines on meta-test tasks (placeholder: being split out)."""
