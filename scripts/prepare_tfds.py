r"""Prepares the project's data sets for TensorFlow Datasets (`tfds.data_source`), without TensorFlow.

  python -m scripts.prepare_tfds                      # all eight (~2 min on one core)
  python -m scripts.prepare_tfds --datasets=mnist,imdb --tfds_dir=/tmp/tfds

Each builder (tasks/tfds_builders.py) checks its raw files against tasks/manifest.json first. The last
stdout line is one JSON object (the TFDS data_dir and seconds per data set); a missing or corrupt raw
file prints what was wrong and exits with status 2.
"""

from absl import app, flags

from scripts import common
from tasks import data_dir as dd
from tasks import tfds_builders

_DATASETS = flags.DEFINE_list(
  "datasets", [], f"Data sets (default: all of {', '.join(tfds_builders.BUILDERS)})."
)
dd.define_data_dir_flag()
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, f"Cache folder (default: ${dd.CACHE_DIR_ENV}).")
_TFDS_DIR = flags.DEFINE_string("tfds_dir", None, "TFDS data_dir (default: <cache>/tfds).")


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}: name data sets with --datasets=mnist,imdb")
  try:
    tfds_dir, seconds = tfds_builders.prepare_many(
      _DATASETS.value, flags.FLAGS.data_dir, _CACHE_DIR.value, _TFDS_DIR.value
    )
  except (dd.DataError, ValueError) as e:
    common.fail(str(e))
  common.emit_json({"tfds_dir": tfds_dir, "seconds": seconds})


if __name__ == "__main__":
  app.run(main)
