r"""The diagnostic commands of the studies, run from the checkout as `python -m experiments.tools.NAME`.

The top layer: a tool may import any package of the project (scripts.cli and config_args included),
and nothing imports a tool. Each module's docstring shows its commands; what they found: docs/diagnostics.md.

* compare_curves: accuracy against inner steps of several evaluations, one table and plot
* feature_figures: the learned rule's features (the paper's Fig. 6)
* gradient_bias: truncated backprop against the full-horizon gradient of the mixing weights
* hand_rule_theta: a θ whose ΔW is a hand-set mix of the rule's fixed terms
* heldout_curve: held-out accuracy of a run's θ snapshots against updates
* inspect_rule: θ's size per sub-network and the rule's speed
* make_figures: paper-style figures from evaluation outputs
* meta_gradient_noise: how noisy the meta-gradients of one θ are
* rule_geometry: the geometry of the rule's weight changes along an inner loop
* splice_theta: θ with parameter groups taken from another θ, or scaled
* validation_table: the meta-validation curves of several runs as one table
"""
