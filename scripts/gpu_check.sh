#!/usr/bin/env bash
# On a GPU: meta-gradients per second with N tasks per compiled call (N = 1, 8, 64 and doubling to the
# largest that fits) against one CPU core at N = 1, the old-vs-new implementation comparison and one
# evaluation. Needs the `gpu` extra: pip install -e ".[gpu]". Writes runs/gpu_check/ (gpu.json,
# cpu_one_core.json, summary.json: the GPU's best N against one core).
# Refuses to run (exit 2) when JAX sees no GPU, so CPU figures are never reported as GPU ones.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/gpu_check
mkdir -p "$out"
python -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 2)' \
  || { echo "gpu_check: JAX has no GPU backend (install the gpu extra on a CUDA machine)" >&2; exit 2; }
python -c 'import jax; print(jax.devices())'
python -m scripts.benchmark --only=tasks_per_call_device --out="$out/gpu.json"
JAX_PLATFORMS=cpu taskset -c 0 python -m scripts.benchmark --only=tasks_per_call --out="$out/cpu_one_core.json"
python - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
gpu = json.loads((out / "gpu.json").read_text())["tasks_per_call"]
cpu = json.loads((out / "cpu_one_core.json").read_text())["tasks_per_call"]
best = gpu["per_n"][str(gpu["best_n"])]["meta_grads_per_sec"]
one_core = cpu["per_n"]["1"]["meta_grads_per_sec"]
summary = {"gpu_best_n": gpu["best_n"], "gpu_meta_grads_per_sec": best, "cpu_one_core_meta_grads_per_sec": one_core,
           "ratio": best / one_core, "largest_fitting_n": gpu.get("largest_fitting_n")}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary))
PY
python -m scripts.benchmark --only=compare --out="$out/benchmark.json"
python -m scripts.evaluate --theta=checkpoints/paper_track_u1200 --task=tiny_mnist --seeds=10 \
  --methods=learned,random_init --out_dir="$out/evaluate" 2>&1 | tee "$out/evaluate.log"
