#!/usr/bin/env bash
# The meta-gradient benchmark (old vs new, rule.implementation reference vs fused) and one
# evaluation on a GPU. Needs the `gpu` extra: pip install -e ".[gpu]". Writes runs/gpu_check/.
# Refuses to run (exit 2) when JAX sees no GPU, so CPU figures are never reported as GPU ones.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/gpu_check
mkdir -p "$out"
python -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 2)' \
  || { echo "gpu_check: JAX has no GPU backend (install the gpu extra on a CUDA machine)" >&2; exit 2; }
python -c 'import jax; print(jax.devices())'
python -m scripts.benchmark --only_compare --out="$out/benchmark.json"
python -m scripts.evaluate --theta=checkpoints/paper_track_u1200 --task=tiny_mnist --seeds=10 \
  --methods=learned,random_init --config.rule.implementation=fused 2>&1 | tee "$out/evaluate.log"
