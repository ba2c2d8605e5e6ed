#!/usr/bin/env bash
# Reproduce the pipeline behind the paper's Figure 2 (Chen et al. 2024) on a
# model and a dataset of your choice:
#
#   1. rankacc sft   the reference model: SFT on the preferred responses
#   2. rankacc dpo   DPO from the SFT model, tracking every tracked pair's
#                    ranking at each evaluation step; draws figure2_flips.png
#                    and figure3_loss_vs_c.png
#   3. lm_eval       ranking accuracy of the reference (SFT) model and of the
#                    best DPO checkpoint (lowest validation loss)
#   4. rankacc idealized / flips   the alignment gap and the flips between them
#
# Usage:
#   scripts/reproduce_figure2.sh MODEL TASK [OUT_DIR]
#
#   MODEL     a transformers causal LM (folder or hub id), e.g. EleutherAI/pythia-2.8b
#   TASK      a rankacc task holding the training data, e.g. rankacc_hh_rlhf_train
#             (or a task YAML file); validation is half of its test split
#   OUT_DIR   default runs/figure2/<model name>-<task>
#
# Environment (optional):
#   SFT_ARGS, DPO_ARGS   extra options of `rankacc sft` / `rankacc dpo` (any
#                        TrainingArguments flag too), e.g. DPO_ARGS="--loss dpo_gamma --gamma 0.5"
#   BATCH_ARGS           default "--per_device_train_batch_size 8 --gradient_accumulation_steps 8"
#                        (Rafailov et al. 2023's batch of 64; App. D.1 names no batch
#                        size, only grids, e.g. {32, 64} for Pythia's DPO)
#   EPOCHS               epochs of SFT and of DPO (default 1, rankacc's default: App. D.1's
#                        Llama 2 7B value; D.1 trains GPT2 and Pythia 2.8B for 5 epochs,
#                        "for both SFT and DPO": EPOCHS=5 for them)
#   EVAL_TASKS           tasks lm_eval scores (default: the task's test split, else the task)
#   DEVICE               lm_eval --device (default: cuda if torch sees a GPU, else cpu)
#   EVAL_ARGS            extra lm_eval options, e.g. "--batch_size 16"
#
# Every stage is a plain command; rerunning the script resumes a killed
# training from its last checkpoint.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
MODEL=$1
TASK=$2
NAME="$(basename "${MODEL%/}")-$(basename "${TASK%.yaml}")"
OUT=${3:-runs/figure2/$NAME}
BATCH_ARGS=${BATCH_ARGS:-"--per_device_train_batch_size 8 --gradient_accumulation_steps 8"}
EPOCHS=${EPOCHS:-1}
SFT_ARGS=${SFT_ARGS:-}
DPO_ARGS=${DPO_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
EVAL_TASKS=${EVAL_TASKS:-$(python -c "
import sys
from lm_eval_rankacc.loading.tasks import sibling_test_task
print(sibling_test_task(sys.argv[1]) or sys.argv[1])" "$TASK")}
mkdir -p "$OUT"

resume() {  # --resume_from_checkpoint true when a run folder already holds a run of ours
    if [[ -f "$1/training_config.json" ]] || compgen -G "$1/checkpoint-[0-9]*" > /dev/null; then
        echo "--resume_from_checkpoint true"
    fi
}
best() {  # the best checkpoint of a run (lowest validation loss)
    python -c "import json, sys; print(json.load(open(sys.argv[1] + '/best_checkpoint.json'))['path'])" "$1"
}

echo "== 1/4 SFT: $MODEL on $TASK -> $OUT/sft"
if [[ ! -f "$OUT/sft/.done" ]]; then
    # shellcheck disable=SC2086
    rankacc sft --model_name_or_path "$MODEL" --task "$TASK" --output_dir "$OUT/sft" \
        --num_train_epochs "$EPOCHS" $BATCH_ARGS $(resume "$OUT/sft") $SFT_ARGS
    touch "$OUT/sft/.done"
fi
REF=$(best "$OUT/sft")

echo "== 2/4 DPO from $REF -> $OUT/dpo"
if [[ ! -f "$OUT/dpo/.done" ]]; then
    # shellcheck disable=SC2086
    rankacc dpo --model_name_or_path "$REF" --task "$TASK" --output_dir "$OUT/dpo" \
        --num_train_epochs "$EPOCHS" $BATCH_ARGS $(resume "$OUT/dpo") $DPO_ARGS
    touch "$OUT/dpo/.done"
fi
POLICY=$(best "$OUT/dpo")

echo "== 3/4 lm_eval on $EVAL_TASKS: reference $REF, policy $POLICY"
for pair in "sft:$REF" "dpo:$POLICY"; do
    # shellcheck disable=SC2086
    lm_eval --model hf --model_args "pretrained=${pair#*:}" --device "$DEVICE" --tasks "$EVAL_TASKS" \
        --output_path "$OUT/eval/${pair%%:*}" --log_samples $EVAL_ARGS
done

echo "== 4/4 idealized ranking accuracy and flips"
rankacc idealized "$OUT/eval/sft" --policy "$OUT/eval/dpo" | tee "$OUT/idealized.md"
rankacc flips "$OUT/eval/sft" "$OUT/eval/dpo" --csv "$OUT/flips.csv" --force | tee "$OUT/flips.md"
rankacc plot-training "$OUT/dpo"
echo "done: $OUT (figures: $OUT/dpo/figure2_flips.png, $OUT/dpo/figure3_loss_vs_c.png)"
