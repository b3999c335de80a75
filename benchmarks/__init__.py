"""Throughput, FLOPs, memory and Ray scaling of the learned rule (`scripts.benchmark`).

A top-level package because it times every layer at once: the rule (`learned_update`),
the learner and the Ray worker pool (`distributed`). It sits above `distributed` and
nothing below imports it.

Every figure is measured in the calling process on `jax.devices()[0]`, so the same code
reports the same quantities on a CPU or a GPU. One module per part:

* `xla`: ahead-of-time compiles (cold or cached), XLA's cost and memory analyses, timing;
* `device`: the device, the float32 / bfloat16 matmul peak, memory counters, peak RSS;
* `shapes`: the shapes each config is benchmarked at, synthetic inputs of those shapes;
* `flops`: FLOP formulas of an inner step and an evaluation (cross-check of XLA's count);
* `meta_gradient`: per config, rates, compile seconds, FLOPs, fraction of peak, memory
  against k, and the extrapolation to unmeasured unroll lengths;
* `scaling`: time per inner step with the batch, width and input size doubled;
* `precision`: the h network in bfloat16 against float32 (speed and gradient error);
* `ray_scaling`: meta-gradients per second of `RayPool` with 1 and 2 actors;
* `run`: all of it in order (Ray first, before any JAX computation); `report`: the table;
* `rule_timing`: a quick jitted timing of the rule for `experiments.tools.inspect_rule`.
"""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")
