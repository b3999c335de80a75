"""TensorBoard event files without TensorFlow (tensorboardX), and a reader for them.

`MetricsWriter(workdir).write(record)` turns one metrics.jsonl record of meta-training into
scalars grouped the way one looks at a run: meta_loss/overall and meta_loss/<dataset>,
validation/accuracy, norms/grad and norms/theta, throughput/*, the rest under train/*.
`write_curves` writes evaluation curves (accuracy against inner steps), one TensorBoard run per
method so that TensorBoard overlays the methods in one chart. View with
`tensorboard --logdir runs/` (tensorboard is a separate install; nothing here needs it).

A missing tensorboardX costs the event files, not the run: a warning says so once.
"""

from __future__ import annotations

import math
import pathlib
import struct
from typing import Any, Iterable, Mapping

from absl import logging

# metrics.jsonl field -> tag; any other numeric field goes to train/<field>.
_TAGS = {
  "meta_loss": "meta_loss/overall",
  "accuracy": "meta_train/accuracy",
  "val_accuracy": "validation/accuracy",
  "val_sem": "validation/sem",
  "val_sec": "validation/seconds",
  "grad_norm": "norms/grad",
  "theta_norm": "norms/theta",
  "meta_grads_per_sec": "throughput/meta_grads_per_sec",
  "inner_steps_per_sec": "throughput/inner_steps_per_sec",
  "meta_grads_total": "throughput/meta_grads_total",
}
_GROUPS = {"meta_loss_per_dataset": "meta_loss"}  # nested {dataset: value} fields
_SKIP = {"step", "val_step"}


def _number(value: Any) -> float | None:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  value = float(value)
  return value if math.isfinite(value) else None


def record_scalars(record: Mapping[str, Any]) -> dict[str, float]:
  """{tag: value} of one metrics.jsonl record (non-numeric and non-finite fields left out)."""
  out = {}
  for key, value in record.items():
    if key in _SKIP:
      continue
    if isinstance(value, Mapping):
      group = _GROUPS.get(key, key)
      for sub, v in value.items():
        if (x := _number(v)) is not None:
          out[f"{group}/{sub}"] = x
    elif (x := _number(value)) is not None:
      out[_TAGS.get(key, f"train/{key}")] = x
  return out


_warned = False


def _summary_writer(logdir):
  global _warned
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if not _warned:
      logging.warning("no TensorBoard event files (%s); install the pinned tensorboardX", e)
      _warned = True
    return None
  pathlib.Path(logdir).mkdir(parents=True, exist_ok=True)
  return SummaryWriter(logdir=str(logdir), flush_secs=30)


class MetricsWriter:
  """Scalars of meta-training records into an event file in `logdir` (beside metrics.jsonl)."""

  def __init__(self, logdir):
    self._logdir = logdir
    self._writer = None
    self._opened = False

  def write(self, record: Mapping[str, Any]) -> None:
    if not self._opened:  # the event file appears with the first record, not before
      self._writer, self._opened = _summary_writer(self._logdir), True
    if self._writer is None:
      return
    step = int(record["step"])
    for tag, value in record_scalars(record).items():
      self._writer.add_scalar(tag, value, step)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def write_curves(logdir, rows: Iterable[Mapping[str, Any]]) -> None:
  """Evaluation rows ({method, step, readout, mean}) as accuracy/<readout> against inner steps,
  one subfolder (a TensorBoard run) per method. Replaces the curves of an earlier write there, as
  the results.json beside them is replaced."""
  by_method: dict[str, list] = {}
  for row in rows:
    by_method.setdefault(str(row["method"]), []).append(row)
  for method, method_rows in by_method.items():
    run_dir = pathlib.Path(logdir) / method
    for old in run_dir.glob("events.out.tfevents.*"):
      old.unlink()
    writer = _summary_writer(run_dir)
    if writer is None:
      return
    for row in sorted(method_rows, key=lambda r: r["step"]):
      if (x := _number(row["mean"])) is not None:
        writer.add_scalar(f"accuracy/{row['readout']}", x, int(row["step"]))
    writer.close()


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
  """{tag: [(step, value), ...]} from every event file under `logdir` (the TFRecord framing is
  read here; the records are tensorboardX's Event protos). For tests and quick checks."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top

  out: dict[str, list] = {}
  for path in sorted(pathlib.Path(logdir).rglob("events.out.tfevents.*")):
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[pos : pos + 8])
      payload = data[pos + 12 : pos + 12 + length]
      pos += 12 + length + 4  # length, its crc, the record, its crc
      event = event_pb2.Event.FromString(payload)
      for value in event.summary.value:
        out.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
  return out
