r"""Throughput, FLOPs, fraction of peak, memory and Ray scaling of the learned rule.

  python -m scripts.benchmark                      # paper + local shapes, Ray: < 10 min on 2 cores
  python -m scripts.benchmark --quick              # tiny shapes, -O0 code, 1-2 tiny Ray workers
  python -m scripts.benchmark --configs=local --skip_ray --out=runs/benchmark/local.json
  taskset -c 0 python -m scripts.benchmark --only_compare   # old vs new only, one core
  python -m scripts.benchmark --only=tasks_per_call,validation_modes   # N tasks per call; inline vs async

Prints a table, then one JSON object as the last stdout line; the same JSON goes to --out.
Runs unchanged on a GPU when JAX has CUDA (the Ray workers stay on CPU cores).
What is measured and how: the `benchmarks` package (one module per part).
"""

import pathlib

from absl import flags

from meta_unsup_rules.benchmarks import report
from meta_unsup_rules.benchmarks import run as benchmark_run
from meta_unsup_rules.scripts import cli
from meta_unsup_rules.util import files, run_record

cli.define_data_dir_flag()  # this command loads data
_CONFIGS = flags.DEFINE_list(
  "configs", ["paper", "local"], f"Configs to measure, of {sorted(benchmark_run.CONFIG_SPECS)}."
)
_OUT = flags.DEFINE_string("out", "runs/benchmark/benchmark.json", "Where to write the JSON.")
_QUICK = flags.DEFINE_bool(
  "quick",
  False,
  "configs/tiny.py shapes and -O0 code instead of --configs: "
  "checks the plumbing in ~1-2 min, the rates mean nothing.",
)
_SKIP_RAY = flags.DEFINE_bool("skip_ray", False, "Skip the Ray scaling measurement.")
_COMPILE_CACHE = flags.DEFINE_bool(
  "compile_cache",
  True,
  "Persistent compilation cache for the executables whose compile time is "
  "not reported (compile_cache_hits in the JSON say where it served one).",
)
_COLD_COMPILE = flags.DEFINE_bool(
  "cold_compile",
  True,
  "Compile the executables whose compile time is reported (apply_rule, first "
  "meta-gradient) without the persistent cache, so their seconds are cold figures.",
)
_COMPARE = flags.DEFINE_bool(
  "compare_implementations",
  True,
  "Old vs new: rule.implementation reference (the released numerics) against fused, "
  "side by side in this process (meta-gradients per core-hour, compile seconds).",
)
_ONLY_COMPARE = flags.DEFINE_bool(
  "only_compare", False, "Run the old-vs-new section alone (= --only=compare)."
)
_ONLY = flags.DEFINE_list(
  "only",
  [],
  f"Run these sections alone, of {sorted(benchmark_run.ONLY_SECTIONS)}.",
)
_COMPILE_THREADS = flags.DEFINE_integer(
  "compile_threads", 2, "Threads for the other compiles (memory against k, scaling, ...)."
)


def main(argv):
  del argv
  unknown = [n for n in _CONFIGS.value if n not in benchmark_run.CONFIG_SPECS]
  if unknown or not _CONFIGS.value:
    specs = sorted(benchmark_run.CONFIG_SPECS)
    cli.fail(f"--configs={','.join(_CONFIGS.value)}: expected a comma-separated subset of {specs}")
  bad = [n for n in _ONLY.value if n not in benchmark_run.ONLY_SECTIONS]
  if bad:
    cli.fail(f"--only={','.join(_ONLY.value)}: expected sections of {sorted(benchmark_run.ONLY_SECTIONS)}")
  if _COMPILE_THREADS.value < 1:
    cli.fail(f"--compile_threads must be >= 1, got {_COMPILE_THREADS.value}")
  out = pathlib.Path(_OUT.value)
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    cli.fail(f"cannot create the folder of --out={out}: {e}")
  # Nothing here may run JAX before run_benchmark has started Ray.
  result = benchmark_run.run_benchmark(
    tuple(_CONFIGS.value),
    quick=_QUICK.value,
    skip_ray=_SKIP_RAY.value,
    compile_cache=_COMPILE_CACHE.value,
    cold_compile=_COLD_COMPILE.value,
    compile_threads=_COMPILE_THREADS.value,
    compare_implementations=_COMPARE.value,
    only_compare=_ONLY_COMPARE.value,
    only=tuple(_ONLY.value),
  )
  result["out"] = str(out)
  print(report.format_report(result), flush=True)
  record = run_record.with_record(result)
  files.atomic_write_bytes(out, (files.dumps(record, indent=2, sort_keys=True) + "\n").encode())
  cli.emit_json(result)


def run():
  """The console command (pyproject.toml [project.scripts])."""
  cli.run(main)


if __name__ == "__main__":
  cli.run(main)
