r"""Write θ = --base with the parameter groups --groups taken from --donor, or scaled (diagnostics).

  S=experiments/earlier/runs/local_labels_run/snapshots
  python -m experiments.tools.splice_theta --base=$S/step_00000550 --donor=$S/step_00000500 \
      --groups=forward --out=runs/diag/u550_with_u500_forward

Groups are slash paths into θ ("forward", "forward/merge", "compute_h"); evaluating the
result (experiments.tools.heldout_curve --thetas=...) tells which part of θ carries a change in
held-out accuracy between two θ of one run. The export keeps --base's config and summary.
With --scale instead of --donor the groups are multiplied by --scale, e.g. every mixing
weight of the ΔW merge (the size of the rule's change before its normalisation):

  python -m experiments.tools.splice_theta --base=experiments/earlier/thetas/local --groups=forward/merge \
      --scale=2 --out=runs/diag/u400_merge_x2
"""

from absl import flags

from meta_unsup_rules.scripts import cli

_BASE = flags.DEFINE_string("base", None, "θ export to start from.")
_DONOR = flags.DEFINE_string("donor", None, "θ export the groups are taken from.")
_GROUPS = flags.DEFINE_list("groups", [], "Slash paths into θ, e.g. forward/merge,compute_h.")
_OUT = flags.DEFINE_string("out", None, "Output export directory.")
_SCALE = flags.DEFINE_float("scale", None, "Multiply the groups by this instead of taking them from --donor.")


def main(argv):
  del argv
  if not (_BASE.value and _GROUPS.value and _OUT.value) or (_DONOR.value is None) == (_SCALE.value is None):
    cli.fail("--base, --groups, --out and exactly one of --donor and --scale are required")
  import jax

  from experiments.tools import theta_surgery
  from meta_unsup_rules.learned_update import ExportError, export

  try:
    base, cfg, summary = export.load_theta(_BASE.value)
    if _SCALE.value is None:
      donor, _, _ = export.load_theta(_DONOR.value)
    else:
      donor = jax.tree_util.tree_map(lambda leaf: leaf * _SCALE.value, base)
    theta, taken = theta_surgery.splice_theta(base, donor, _GROUPS.value)
  except ExportError as e:
    cli.fail(str(e))
  summary = dict(summary or {})
  summary["spliced"] = {
    "base": _BASE.value,
    "donor": _DONOR.value,
    "scale": _SCALE.value,
    "groups": _GROUPS.value,
    "leaves_from_donor": len(taken),
  }
  export.save_theta(_OUT.value, theta, cfg, summary)
  cli.emit_json({"out": _OUT.value, **summary["spliced"]})


if __name__ == "__main__":
  cli.run(main)
