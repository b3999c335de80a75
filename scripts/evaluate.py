r"""Evaluate a learned update rule against baselines on a meta-test task (spec §6–7).

  PYTHONPATH=. python -m scripts.evaluate --theta=runs/local/export --task=tiny_mnist \
      --inner_steps=2000 --eval_every=250 --seeds=5
  PYTHONPATH=. python -m scripts.evaluate --theta=random --task=tiny_mnist --inner_steps=200 --seeds=3
  PYTHONPATH=. python -m scripts.evaluate --task=tiny_mnist \
      --methods=random_init,protonet,protonet_permuted
  PYTHONPATH=. python -m scripts.evaluate --task=tiny_mnist --protocol=semi_supervised \
      --label_fractions=0.01,0.1

For each seed: a fresh seeded base model; the rule (θ from an export directory, or
`init_theta(PRNGKey(seed))` for --theta=random) applied on the unlabelled stream
(batch cfg.unroll.inner_batch_size); the baselines on the same stream from the same
initial network; ridge and logistic readouts on a `support_per_class`-per-class
support set at steps 0, M, 2M, ..., N. Protocol: evaluation/runner.py, evaluation/protocols.py.
--protocol=episodic: N-way K-shot episodes (--episodic); linear_probe: readouts fitted on
the whole train split (at most --probe_max_train examples); semi_supervised: readouts
fitted on each fraction of --label_fractions of every class's train labels, reported as
"ridge@1%", "logistic@10%", .... The protonet baselines are supervised references trained
on all train labels (base_models/baselines/protonet.py).

Config: --config (default configs/local.py: cheaper rule, inner batch 64) with
`--config.a.b=...` overrides. With an exported θ its own config.json supplies `rule`
and `base_model`; explicit --config.rule.* / --config.base_model.* overrides still win.
Baseline settings: cfg.baselines if the config file has it, else the --baselines flag
(defaults: base_models.baselines.default_baseline_config; override e.g.
--baselines.vae.learning_rate=3e-4).

Writes <out_dir>/results.csv, results.json, accuracy.png (default runs/eval/<task>);
the last stdout line is one JSON object with the final accuracies per method.
Bad input (unknown task / method / protocol, missing θ) exits with status 2.
"""
import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from base_models import baselines as bl
from evaluation import learned_rule, outputs, protocols, runner
from scripts import common  # noqa: F401  (defines --data_dir)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(_ROOT, "configs", "local.py"),
                                          "Base config (rule, base model, inner batch).")
_BASELINES = config_flags.DEFINE_config_dict("baselines", bl.default_baseline_config(),
                                             "Baseline settings (used if cfg has no `baselines`).")
_THETA = flags.DEFINE_string("theta", "random", "θ export directory, or 'random'.")
_TASK = flags.DEFINE_string("task", "tiny_mnist", "Evaluation task (tasks.eval_tasks.EVAL_TASKS).")
_STEPS = flags.DEFINE_integer("inner_steps", 1000, "Unlabelled minibatches per run (N; the README Results use 1,000).")
_EVERY = flags.DEFINE_integer("eval_every", 0, "Steps between evaluations (M); 0: max(1, N // 5).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Number of seeds: cfg.seed, cfg.seed+1, ...")
_METHODS = flags.DEFINE_list("methods", list(runner.METHODS), f"Subset of {runner.METHODS}.")
_OUT = flags.DEFINE_string("out_dir", None, "Output directory (default runs/eval/<task>).")
_MAX_TEST = flags.DEFINE_integer("max_test", 2000, "Test examples scored (fixed subset).")
_SUPPORT = flags.DEFINE_integer("support_per_class", 10, "Labelled examples per class.")
_PROTOCOL = flags.DEFINE_enum("protocol", "fewshot", list(protocols.PROTOCOLS),
                              "fewshot: fixed support/test sets; episodic: N-way K-shot episodes; "
                              "linear_probe: all train labels; semi_supervised: label fractions.")
_EPISODIC = flags.DEFINE_list("episodic", ["5", "10", "15", "50"],
                              "n_way,k_shot,n_query,episodes for --protocol=episodic.")
_PROBE_MAX = flags.DEFINE_integer("probe_max_train", 10_000,
                                  "--protocol=linear_probe: labelled train examples, at most.")
_FRACTIONS = flags.DEFINE_list("label_fractions", ["0.01", "0.1"],
                               "--protocol=semi_supervised: fractions of each class's labels.")


def _fail(msg: str) -> None:
  print(f"evaluate: error: {msg}", file=sys.stderr)
  sys.exit(2)


def setup():
  """Validates the shared flags; returns (cfg, task, methods, theta_fn, seeds, eval_every).

  Exits with status 2 (message on stderr) on bad input. Shared with scripts.sweep.
  """
  import ml_collections
  import learned_update
  from tasks import DataError, eval_tasks

  learned_update.configure_jax()
  if _TASK.value not in eval_tasks.EVAL_TASKS:
    _fail(f"unknown task {_TASK.value!r}; known: {', '.join(eval_tasks.EVAL_TASKS)}")
  methods = [m.strip() for m in _METHODS.value if m.strip()]
  bad = [m for m in methods if m not in runner.METHODS]
  if bad or not methods:
    _fail(f"unknown methods {bad}; expected a comma-separated subset of {', '.join(runner.METHODS)}")
  if _STEPS.value < 0 or _EVERY.value < 0 or _SEEDS.value < 1 or _MAX_TEST.value < 1:
    _fail("need --inner_steps >= 0, --eval_every >= 0, --seeds >= 1, --max_test >= 1")
  try:
    n_way, k_shot, n_query, episodes = (int(v) for v in _EPISODIC.value)
  except ValueError:
    _fail(f"--episodic must be four integers n_way,k_shot,n_query,episodes, got {_EPISODIC.value}")
  try:
    fractions = tuple(float(v) for v in _FRACTIONS.value)
  except ValueError:
    fractions = ()
  labels = [protocols.fraction_label(f) for f in fractions]
  if not fractions or not all(0.0 < f <= 1.0 for f in fractions) or len(set(labels)) < len(labels):
    _fail(f"--label_fractions must be distinct numbers in (0, 1], got {_FRACTIONS.value}")
  if _PROBE_MAX.value < 1:
    _fail("need --probe_max_train >= 1")

  cfg = ml_collections.ConfigDict(_CONFIG.value.to_dict())  # unlocked copy
  try:
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    theta_fn, cfg = learned_rule.resolve_theta(_THETA.value, cfg, overrides)
  except learned_update.ExportError as e:
    _fail(str(e))
  if "baselines" not in cfg:
    cfg.baselines = _BASELINES.value
  cfg = runner.config_with_defaults(cfg)
  cfg.evaluation.update(dict(max_test=_MAX_TEST.value, support_per_class=_SUPPORT.value,
                             protocol=_PROTOCOL.value, n_way=n_way, k_shot=k_shot,
                             n_query=n_query, episodes=episodes,
                             probe_max_train=_PROBE_MAX.value, label_fractions=fractions))
  try:
    task = eval_tasks.make_eval_task(_TASK.value)
  except (DataError, ValueError, OSError) as e:
    _fail(f"cannot load task {_TASK.value!r}: {e}")
  if _PROTOCOL.value == "episodic" and n_way > task.num_classes:
    _fail(f"n_way={n_way} exceeds {task.name}'s {task.num_classes} classes")
  every = _EVERY.value or max(1, _STEPS.value // 5)
  seeds = [int(cfg.seed) + i for i in range(_SEEDS.value)]
  return cfg, task, methods, theta_fn, seeds, every


def main(argv):
  del argv
  cfg, task, methods, theta_fn, seeds, every = setup()
  logging.info("task %s, methods %s, %d steps (every %d), seeds %s, theta %s", task.name,
               methods, _STEPS.value, every, seeds, _THETA.value)
  result = runner.run_evaluation(task, cfg, methods, _STEPS.value, every, seeds, theta_fn,
                                 log=lambda s: logging.info("%s", s))
  result["theta"] = _THETA.value
  out_dir = _OUT.value or os.path.join("runs", "eval", task.name)
  paths = outputs.write_outputs(result, out_dir)
  logging.info("wrote %s; %.1f s (per method: %s)", paths, result["seconds"]["total"],
               {m: round(s, 1) for m, s in result["seconds"]["per_method"].items()})
  print(json.dumps({"task": task.name, "inner_steps": _STEPS.value, "theta": _THETA.value,
                    "seeds": len(seeds), "final": result["final"], "out_dir": out_dir}))


if __name__ == "__main__":
  app.run(main)
