"""Data sets, meta-training task distribution and evaluation tasks (numpy only, no JAX).

See the module docstrings: data_dir (directories, checksums, cache), datasets (raw loaders,
IMDB tokenisation, Tiny-ImageNet class split), alphabet (font rendering), image_ops (resize,
grey, augmentation), meta_train (task distribution), eval_tasks (evaluation tasks),
tfds_builders (the same data sets as TensorFlow Datasets; imported on demand, not here).
"""

if not __name__.startswith("meta_unsup_rules."):  # imported by its folder's bare name from a checkout
  raise ImportError(f"import meta_unsup_rules.{__name__}, not {__name__}: the folders are one package")

from meta_unsup_rules.tasks.data_dir import DataError, resolve_cache_dir, resolve_data_dir
from meta_unsup_rules.tasks.datasets import DATASETS, Dataset, load_dataset, load_raw
from meta_unsup_rules.tasks.eval_tasks import EVAL_TASKS, EvalTask, make_eval_task
from meta_unsup_rules.tasks.meta_train import MetaTrainTask, sample_layer_widths, sample_meta_train_task

__all__ = [
  "DataError",
  "resolve_data_dir",
  "resolve_cache_dir",
  "DATASETS",
  "Dataset",
  "load_dataset",
  "load_raw",
  "EVAL_TASKS",
  "EvalTask",
  "make_eval_task",
  "MetaTrainTask",
  "sample_layer_widths",
  "sample_meta_train_task",
]
