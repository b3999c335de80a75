r"""Loads every data set and prints counts, shapes, classes, checksum status and load times.

  python -m scripts.describe_data [--data_dir=PATH] [--datasets=mnist,imdb] [--nocold]

Cold time: the first load in a fresh temporary cache folder with per-process memos
cleared (decoding the raw files; the checksums are computed). Cached time: the load again
from that folder after clearing the memos (npz read, checksum markers). With --nocold
only the configured cache folder ($META_UNSUP_CACHE_DIR or ~/.cache/meta_unsup) is used and
the cold column is null. The last stdout line is one JSON object: {"datasets": {...}}.
A DataError (missing or corrupt raw file) prints a message to stderr and exits with 2.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from absl import app, flags

from scripts import common
from tasks import data_dir as dd
from tasks import datasets as ds

flags.DEFINE_list("datasets", list(ds.DATASETS), "Data sets to describe.")
flags.DEFINE_bool("cold", True, "Also measure a cold load in a fresh temporary cache folder.")
FLAGS = flags.FLAGS


def _load_all(name: str, data_dir, cache_dir) -> tuple[float, dict]:
  ds.clear_memos()
  t = time.perf_counter()
  splits = {s: ds.load_raw(name, s, data_dir, cache_dir) for s in ds.SPLITS[name]}
  return time.perf_counter() - t, splits


def describe(name: str, data_dir, cold: bool) -> dict:
  cold_s = None
  if cold:
    tmp = tempfile.mkdtemp(prefix="meta_unsup_cold_")
    try:
      cold_s, _ = _load_all(name, data_dir, tmp)
      cached_s, splits = _load_all(name, data_dir, tmp)
    finally:
      ds.clear_memos()
      shutil.rmtree(tmp, ignore_errors=True)
  else:
    _load_all(name, data_dir, None)
    cached_s, splits = _load_all(name, data_dir, None)
  first = next(iter(splits.values()))
  raw = ds.raw_files(name)
  info = {
    "splits": {s: int(len(d.y)) for s, d in splits.items()},
    "examples": int(sum(len(d.y) for s, d in splits.items() if s != "all")),
    "shape": list(first.x.shape[1:]),
    "dtype_stored": str(first.x.dtype),
    "num_classes": {s: int(d.num_classes) for s, d in splits.items()},
    "checksum": "verified" if raw else "synthetic",
    "raw_files": raw,
    "load_seconds_cold": None if cold_s is None else round(cold_s, 3),
    "load_seconds_cached": round(cached_s, 3),
  }
  if name == "alphabet":
    info["num_fonts"] = len(first.extra["font_names"])
  if name == "imdb":
    info["vocabulary_size"] = len(first.extra["vocab"])
  if name == "imagenet":
    info["heldout_classes"] = [int(i) for i in ds.imagenet_heldout_classes()]
  return info


def main(argv):
  del argv
  try:
    data_dir = dd.resolve_data_dir(FLAGS.data_dir)
    print(f"data directory: {data_dir}")
    print(
      f"cache directory: {dd.resolve_cache_dir()}"
      + (" (cold loads: fresh temp folders)" if FLAGS.cold else "")
    )
    out = {}
    for name in FLAGS.datasets:
      info = describe(name, str(data_dir), FLAGS.cold)
      out[name] = info
      splits = ", ".join(f"{s} {n}" for s, n in info["splits"].items())
      classes = ", ".join(f"{s} {n}" for s, n in info["num_classes"].items())
      cold = "-" if info["load_seconds_cold"] is None else f"{info['load_seconds_cold']:.2f}s"
      extra = f"; {info['num_fonts']} fonts" if "num_fonts" in info else ""
      print(
        f"{name:14s} examples {info['examples']:6d} ({splits}); shape "
        f"{tuple(info['shape'])}; classes ({classes}); checksum {info['checksum']}; "
        f"load cold {cold}, cached {info['load_seconds_cached']:.2f}s{extra}",
        flush=True,
      )
  except dd.DataError as e:
    common.fail(str(e))
  common.emit_json({"data_dir": str(data_dir), "datasets": out})


if __name__ == "__main__":
  app.run(main)
