r"""The data sets: describe them (counts, checksums, load times) or prepare their TFDS copies.

  python -m scripts.data describe [--data_dir=PATH] [--datasets=mnist,imdb] [--nocold]
  python -m scripts.data prepare_tfds                      # all eight (~2 min on one core)
  python -m scripts.data prepare_tfds --datasets=mnist,imdb --tfds_dir=/tmp/tfds

`describe` loads every data set (or those of --datasets) and prints counts, shapes, classes,
checksum status and load times. Cold time: the first load in a fresh temporary cache folder with
per-process memos cleared (decoding the raw files; the checksums are computed). Cached time: the
load again from that folder after clearing the memos (npz read, checksum markers). With --nocold
only the configured cache folder ($META_UNSUP_CACHE_DIR or ~/.cache/meta_unsup) is used and the
cold column is null. The last stdout line is one JSON object: {"data_dir": ..., "datasets": {...}}.

`prepare_tfds` prepares the data sets for TensorFlow Datasets (`tfds.data_source`), without
TensorFlow: each builder (tasks/tfds_builders.py) checks its raw files against tasks/manifest.json
first. The last stdout line is one JSON object (the TFDS data_dir and seconds per data set).

A missing or corrupt raw file (tasks.DataError) prints what was wrong to stderr and exits with
status 2, as do a missing or unknown subcommand and a flag of the other subcommand.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from absl import flags

from meta_unsup_rules.scripts import cli
from meta_unsup_rules.tasks import data_dir as dd
from meta_unsup_rules.tasks import datasets as ds

cli.define_data_dir_flag()  # this command loads data
COMMANDS = ("describe", "prepare_tfds")
_DATASETS = flags.DEFINE_list(
  "datasets",
  [],
  f"Data sets (default: all of {', '.join(ds.DATASETS)}).",
)
_COLD = flags.DEFINE_bool("cold", True, "describe: also time a cold load in a fresh temporary cache folder.")
_CACHE_DIR = flags.DEFINE_string(
  "cache_dir", None, f"prepare_tfds: cache folder (default: ${dd.CACHE_DIR_ENV})."
)
_TFDS_DIR = flags.DEFINE_string("tfds_dir", None, "prepare_tfds: TFDS data_dir (default: <cache>/tfds).")
# The flags only one subcommand reads: given to the other, they are a mistake.
_OWN_FLAGS = {"describe": ("cold",), "prepare_tfds": ("cache_dir", "tfds_dir")}


# ------------------------------------------------------------------------------ describe


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


def run_describe(names, data_dir_flag, cold: bool) -> dict:
  try:
    data_dir = dd.resolve_data_dir(data_dir_flag)
    print(f"data directory: {data_dir}")
    cold_note = " (cold loads: fresh temp folders)" if cold else ""
    print(f"cache directory: {dd.resolve_cache_dir()}{cold_note}")
    out = {}
    for name in names or list(ds.DATASETS):
      info = describe(name, str(data_dir), cold)
      out[name] = info
      splits = ", ".join(f"{s} {n}" for s, n in info["splits"].items())
      classes = ", ".join(f"{s} {n}" for s, n in info["num_classes"].items())
      cold_s = "-" if info["load_seconds_cold"] is None else f"{info['load_seconds_cold']:.2f}s"
      extra = f"; {info['num_fonts']} fonts" if "num_fonts" in info else ""
      print(
        f"{name:14s} examples {info['examples']:6d} ({splits}); shape "
        f"{tuple(info['shape'])}; classes ({classes}); checksum {info['checksum']}; "
        f"load cold {cold_s}, cached {info['load_seconds_cached']:.2f}s{extra}",
        flush=True,
      )
  except dd.DataError as e:
    cli.fail(str(e))
  return {"data_dir": str(data_dir), "datasets": out}


# ------------------------------------------------------------------------------ prepare_tfds


def run_prepare_tfds(names, data_dir_flag, cache_dir, tfds_dir) -> dict:
  from meta_unsup_rules.tasks import tfds_builders  # imports tensorflow_datasets: only for this subcommand

  try:
    out, seconds = tfds_builders.prepare_many(names, data_dir_flag, cache_dir, tfds_dir)
  except (dd.DataError, ValueError) as e:
    cli.fail(str(e))
  return {"tfds_dir": out, "seconds": seconds}


def main(argv):
  usage = f"expected one subcommand: python -m scripts.data {{{'|'.join(COMMANDS)}}} [flags]"
  if len(argv) < 2:
    cli.fail(f"no subcommand given: {usage}")
  command, rest = argv[1], argv[2:]
  if command not in COMMANDS:
    cli.fail(f"unknown subcommand {command!r}: {usage}")
  if rest:
    cli.fail(f"unexpected arguments {rest}: name data sets with --datasets=mnist,imdb")
  unknown = [n for n in _DATASETS.value if n not in ds.DATASETS]
  if unknown:
    cli.fail(f"--datasets: unknown data sets {unknown}: expected some of {list(ds.DATASETS)}")
  other = [f for c, names in _OWN_FLAGS.items() if c != command for f in names if flags.FLAGS[f].present]
  if other:
    cli.fail(f"--{', --'.join(other)}: not a flag of `{command}` ({usage})")
  data_dir = flags.FLAGS.data_dir
  if command == "describe":
    cli.emit_json(run_describe(_DATASETS.value, data_dir, _COLD.value))
  else:
    cli.emit_json(run_prepare_tfds(_DATASETS.value, data_dir, _CACHE_DIR.value, _TFDS_DIR.value))


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
