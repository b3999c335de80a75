r"""Write θ = --base with the parameter groups --groups taken from --donor (a diagnostic).

  S=checkpoints/local_labels_run/snapshots
  python -m scripts.splice_theta --base=$S/step_00000550 --donor=$S/step_00000500 \
      --groups=forward --out=runs/diag/u550_with_u500_forward

Groups are slash paths into θ ("forward", "forward/merge", "compute_h"); evaluating the
result (scripts.heldout_curve --thetas=...) tells which part of θ carries a change in
held-out accuracy between two θ of one run. The export keeps --base's config and summary.
"""

from absl import app, flags

from scripts import common

_BASE = flags.DEFINE_string("base", None, "θ export to start from.")
_DONOR = flags.DEFINE_string("donor", None, "θ export the groups are taken from.")
_GROUPS = flags.DEFINE_list("groups", [], "Slash paths into θ, e.g. forward/merge,compute_h.")
_OUT = flags.DEFINE_string("out", None, "Output export directory.")


def main(argv):
  del argv
  if not (_BASE.value and _DONOR.value and _GROUPS.value and _OUT.value):
    common.fail("--base, --donor, --groups and --out are all required")
  from learned_update import ExportError, export

  try:
    base, cfg, summary = export.load_theta(_BASE.value)
    donor, _, _ = export.load_theta(_DONOR.value)
    theta, taken = export.splice_theta(base, donor, _GROUPS.value)
  except ExportError as e:
    common.fail(str(e))
  summary = dict(summary or {})
  summary["spliced"] = {
    "base": _BASE.value,
    "donor": _DONOR.value,
    "groups": _GROUPS.value,
    "leaves_from_donor": len(taken),
  }
  export.save_theta(_OUT.value, theta, cfg, summary)
  common.emit_json({"out": _OUT.value, **summary["spliced"]})


if __name__ == "__main__":
  app.run(main)
