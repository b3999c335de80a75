"""``python -m tasks.prepare_tfds [names...] [--data_dir=...] [--cache_dir=...] [--tfds_dir=...]``:
prepares the project's data sets for ``tfds.data_source`` (tasks/tfds_builders.py). Prints one JSON
line (the TFDS data_dir and seconds per data set); a missing or corrupt raw file exits with status 2."""

import sys

from tasks import tfds_builders

if __name__ == "__main__":
  sys.exit(tfds_builders.main())
