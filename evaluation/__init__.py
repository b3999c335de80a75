"""Evaluation of update rules and baselines on meta-test tasks, and every figure.

config_section.py checks of the `evaluation` config section (values: configs/paper.py)
evaluation_setup.py the set-up every evaluating command shares: checked config, task, θ, seeds
protocols.py     readouts on features: fewshot / episodic / linear_probe / semi_supervised
learned_rule.py  the learned rule as an evaluated method; θ from --theta
runner.py        every method on every seed (seeds in turn or in threads); run_evaluation
seeds.py         what one seed draws and builds, and its readout plan at each point
batched.py       all seeds in lockstep, each method's computation vmapped over them
stats.py         mean ± s.e. over seeds, 95% intervals, final summaries
sweeps.py        base-model sweeps (Fig. 5)
outputs.py       results.csv / .json / accuracy.png, merged runs, Markdown tables
features.py      Fig. 6 feature analysis (receptive fields, PCA spectra)
plots.py         every matplotlib figure of the project
"""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")
