r"""Write a θ whose ΔW is a hand-set mix of the rule's fixed terms (a hand-designed rule).

  python -m experiments.tools.hand_rule_theta --base=experiments/earlier/thetas/local --mixing=hebb=1 \
      --inner_lr=1e-3 --out=runs/hand/hebb_lr0.001

Every mixing weight not named in --mixing and the merge bias become 0; the rest of θ (the
h network, which still drives the bias change, and the top-down signal) comes from --base,
as does the config, with rule.inner_lr replaced if --inner_lr is given. --base=untrained takes
`init_theta(seed)` of --config (default configs/local.py): a start with no meta-trained
ancestor. The export's summary.json extends the base's lineage by this step (track
"extension"); --selected_on names the validation task and seeds the values were chosen on. The names are
learned_update.rule.WEIGHT_TERMS; "hebb" (−x_inᵀx_out of the standardised activations) and
"decorr_x" (Ŵ times the outputs' correlation) are the Hebbian and Oja-decay parts;
--hebb_term=oja_centred makes "hebb" Oja's whole subspace direction (learned_update/rule.py).
Evaluate with experiments.tools.heldout_curve --thetas=..., or meta-train from it with
--config.learner.init_theta=<out>.
"""

import copy
import sys

from absl import flags

from meta_unsup_rules.scripts import cli, config_args

cli.define_data_dir_flag()  # this command loads data
_BASE = flags.DEFINE_string("base", None, "θ export whose non-merge parameters and config are kept.")
_MIXING = flags.DEFINE_list("mixing", [], "term=weight pairs, e.g. hebb=1,decorr_x=0.5.")
_INNER_LR = flags.DEFINE_float("inner_lr", None, "rule.inner_lr of the written export (default: --base's).")
_HEBB_TERM = flags.DEFINE_string(
  "hebb_term", None, "rule.hebb_term of the written export: released, oja or oja_centred (default: --base's)."
)
_OUT = flags.DEFINE_string("out", None, "Output export directory.")
_ZERO = flags.DEFINE_list(
  "zero", [], "Top-level θ entries set to zero as well, e.g. bias_readout (no learned bias change)."
)
_CONFIG = config_args.define_config_file(
  "config", "configs/local.py", "Config of the untrained θ (used with --base=untrained only)."
)
_SELECTED_ON = flags.DEFINE_string(
  "selected_on",
  None,
  "TASK:FIRST-LAST, the validation task and seeds the hand-set values were chosen on (for the lineage).",
)


def parse_mixing(items: list[str]) -> dict[str, float]:
  weights = {}
  for item in items:
    name, _, value = item.partition("=")
    try:  # no "=" leaves value empty, which float() refuses too
      weights[name.strip()] = float(value)
    except ValueError:
      cli.fail(f"--mixing: expected term=weight, got {item!r}")
  return weights


def parse_selected_on(text: str | None) -> dict | None:
  """ "TASK:FIRST-LAST" → {"task", "seeds": [first, last]} (None when not given)."""
  if not text:
    return None
  task, _, seeds = text.partition(":")
  first, _, last = seeds.partition("-")
  try:
    return {"task": task, "seeds": [int(first), int(last or first)]}
  except ValueError:
    cli.fail(f"--selected_on: expected TASK:FIRST-LAST (e.g. alphabet_val:1000-1009), got {text!r}")


def main(argv):
  del argv
  if not (_BASE.value and _MIXING.value and _OUT.value):
    cli.fail("--base, --mixing and --out are required")
  if _INNER_LR.value is not None and not _INNER_LR.value > 0:
    cli.fail(f"--inner_lr must be > 0, got {_INNER_LR.value}")
  from experiments.tools import theta_surgery
  from meta_unsup_rules.learned_update import ExportError, export, rule

  if _HEBB_TERM.value is not None and _HEBB_TERM.value not in rule.HEBB_TERMS:
    cli.fail(f"--hebb_term must be one of {rule.HEBB_TERMS}, got {_HEBB_TERM.value!r}")

  import jax
  import numpy as np

  from meta_unsup_rules.distributed import provenance as lineage

  weights = parse_mixing(_MIXING.value)
  selected = parse_selected_on(_SELECTED_ON.value)
  if selected is not None and selected["task"] in lineage.TEST_TASKS:
    cli.fail(f"--selected_on: {selected['task']!r} is a test task; choose hand-set values on validation")
  try:
    if _BASE.value == lineage.UNTRAINED:
      cfg = _CONFIG.value
      base = jax.tree_util.tree_map(np.asarray, rule.init_theta(jax.random.PRNGKey(cfg.seed), cfg.rule))
      base_summary = {"track": "paper", "lineage": []}
    else:
      base, cfg, base_summary = export.load_theta(_BASE.value)
    theta = theta_surgery.with_hand_mixing(base, weights)
    unknown = sorted(set(_ZERO.value) - set(theta))
    if unknown:
      raise ExportError(f"--zero: θ has no entries {unknown}; it has {sorted(theta)}")
    theta = {
      k: (jax.tree_util.tree_map(np.zeros_like, v) if k in _ZERO.value else v) for k, v in theta.items()
    }
  except ExportError as e:
    cli.fail(str(e))
  cfg = copy.deepcopy(cfg)
  if _INNER_LR.value is not None:
    cfg.rule.inner_lr = _INNER_LR.value
  if _HEBB_TERM.value is not None:
    cfg.rule.hebb_term = _HEBB_TERM.value
  hand_rule = {
    "base": _BASE.value,
    "mixing": weights,
    "inner_lr": cfg.rule.inner_lr,
    "zero": list(_ZERO.value),
  }
  if "hebb_term" in cfg.rule:
    hand_rule["hebb_term"] = cfg.rule.hebb_term
  if _BASE.value == lineage.UNTRAINED:
    start_lineage = []
  else:  # an export without a lineage stays unknown, which lineage.problems reports
    start_lineage = list((base_summary or {}).get("lineage") or [{"run": _BASE.value}])
  entry = lineage.run_entry(
    _OUT.value,
    f"python -m experiments.tools.hand_rule_theta {' '.join(sys.argv[1:])}",
    0,
    True,  # nothing is meta-trained here: no meta-validation class is seen
    start_lineage,
    selected,
  )
  summary = {
    "updates": 0,
    "hand_rule": hand_rule,
    "track": "extension",  # a hand-set start is not the paper's method
    "release": False,
    "lineage": [*start_lineage, entry],
  }
  export.save_theta(_OUT.value, theta, cfg, summary)
  cli.emit_json({"out": _OUT.value, **summary["hand_rule"]})


if __name__ == "__main__":
  cli.run(main)
