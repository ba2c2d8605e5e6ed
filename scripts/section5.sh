#!/usr/bin/env bash
# The paper's Section 5 experiment (Chen et al. 2024, Fig. 4; App. E) on a
# model and a dataset of your choice (docs/section5.md):
#
#   0. rankacc sft      (only with SFT=1) the reference: SFT on the preferred responses
#   1. rankacc dpo      DPO with tracking: ranking accuracy and the distance
#                       travelled ||theta - theta_ref|| at every evaluation step,
#                       a checkpoint at each
#   2. lm_eval          one greedy generation per prompt of a fixed sample
#                       (the task's generate_until variant, rankgen_*), by the
#                       reference (step 0) and by each chosen checkpoint
#   3. rankacc winrate  each checkpoint's generations against the reference's,
#                       judged pairwise in both orders
#   4. rankacc plot-training   figure 4: ranking accuracy and win rate against
#                       the distance travelled
#
# Usage:
#   scripts/section5.sh MODEL TASK [OUT_DIR]
#
#   MODEL     the reference / starting policy (folder or hub id), e.g. an SFT'd
#             EleutherAI/pythia-2.8b; with SFT=1 the base model to SFT first
#   TASK      a rankacc task holding the training data, e.g. rankacc_hh_rlhf_train
#   OUT_DIR   default runs/section5/<model name>-<task>
#
# Environment (optional):
#   DATA_FILES   local files in the dataset's hub schema, for training and generation
#   DPO_ARGS     extra `rankacc dpo` options (any TrainingArguments flag too),
#                e.g. "--max_steps 2000 --eval_steps 100 --loss dpo_gamma --gamma 0.5"
#   BATCH_ARGS   default "--per_device_train_batch_size 8 --gradient_accumulation_steps 8"
#                (Rafailov et al. 2023's batch of 64; App. D.1 names only grids)
#   SFT, SFT_ARGS   SFT=1 runs `rankacc sft` first (one epoch), with SFT_ARGS
#                (App. D.1: 5 epochs for GPT2 and Pythia 2.8B, 1 for Llama 2 7B,
#                for SFT and DPO: e.g. SFT_ARGS="--num_train_epochs 5")
#   GEN_TASK     generation task (default: TASK with rankacc_ -> rankgen_)
#   N_PROMPTS    prompts generated for (default 500), GEN_SEED their sample's seed (default 0)
#   MAX_GEN_TOKS tokens per generation (default: the task's, 256)
#   STEPS        checkpoints generated at, e.g. "100 500 1000" (default: every
#                checkpoint of the run); step 0 is MODEL itself, always generated
#   GEN_MODEL    lm_eval --model (default hf; vllm works too), GEN_ARGS extra lm_eval
#                options (e.g. "--batch_size 32", "--apply_chat_template")
#   DEVICE       lm_eval --device (default: cuda if torch sees a GPU, else cpu)
#   JUDGE_ARGS   `rankacc winrate` judge: "--judge-url URL --judge-model NAME" (key in
#                $OPENAI_API_KEY) or "--judge-local MODEL_DIR"; empty: stop after the
#                generations and print the commands left
#   WINRATE_ARGS extra `rankacc winrate` options
#
# Every stage is a plain command, printed before it runs; rerunning the script
# resumes a killed training and skips the generations and judgements done.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
MODEL=$1
TASK=$2
OUT=${3:-runs/section5/$(basename "${MODEL%/}")-$(basename "${TASK%.yaml}")}
BATCH_ARGS=${BATCH_ARGS:-"--per_device_train_batch_size 8 --gradient_accumulation_steps 8"}
DPO_ARGS=${DPO_ARGS:-}
SFT=${SFT:-0}
SFT_ARGS=${SFT_ARGS:-}
GEN_TASK=${GEN_TASK:-${TASK/#rankacc_/rankgen_}}
N_PROMPTS=${N_PROMPTS:-500}
GEN_SEED=${GEN_SEED:-0}
MAX_GEN_TOKS=${MAX_GEN_TOKS:-}
STEPS=${STEPS:-}
GEN_MODEL=${GEN_MODEL:-hf}
GEN_ARGS=${GEN_ARGS:-}
JUDGE_ARGS=${JUDGE_ARGS:-}
WINRATE_ARGS=${WINRATE_ARGS:-}
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
DATA_ARGS=()
META_FILES=""
if [[ -n "${DATA_FILES:-}" ]]; then
    DATA_ARGS=(--data_files "$DATA_FILES")
    META_FILES=$(python -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$DATA_FILES")
    META_FILES=", \"data_files\": $META_FILES"
fi
METADATA="{\"sample_size\": $N_PROMPTS, \"seed\": $GEN_SEED$META_FILES}"
GEN_KWARGS=()
[[ -n "$MAX_GEN_TOKS" ]] && GEN_KWARGS=(--gen_kwargs "max_gen_toks=$MAX_GEN_TOKS")
mkdir -p "$OUT"

run() { printf '+'; printf ' %q' "$@"; echo; "$@"; }
resume() {  # --resume_from_checkpoint true when a run folder already holds a run of ours
    if [[ -f "$1/training_config.json" ]] || compgen -G "$1/checkpoint-[0-9]*" > /dev/null; then
        echo "--resume_from_checkpoint true"
    fi
}
best() {  # the best checkpoint of a run (lowest validation loss)
    python -c "import json, sys; print(json.load(open(sys.argv[1] + '/best_checkpoint.json'))['path'])" "$1"
}

REF=$MODEL
if [[ "$SFT" == 1 ]]; then
    echo "== 0/4 SFT: $MODEL on $TASK -> $OUT/sft"
    if [[ ! -f "$OUT/sft/.done" ]]; then
        # shellcheck disable=SC2086
        run rankacc sft --model_name_or_path "$MODEL" --task "$TASK" "${DATA_ARGS[@]}" --output_dir "$OUT/sft" \
            --num_train_epochs 1 $BATCH_ARGS $(resume "$OUT/sft") $SFT_ARGS
        touch "$OUT/sft/.done"
    fi
    REF=$(best "$OUT/sft")
fi

echo "== 1/4 DPO with tracking from $REF -> $OUT/dpo"
if [[ ! -f "$OUT/dpo/.done" ]]; then
    # shellcheck disable=SC2086
    run rankacc dpo --model_name_or_path "$REF" --task "$TASK" "${DATA_ARGS[@]}" --output_dir "$OUT/dpo" \
        $BATCH_ARGS $(resume "$OUT/dpo") $DPO_ARGS
    touch "$OUT/dpo/.done"
fi
if [[ -z "$STEPS" ]]; then
    STEPS=$(find "$OUT/dpo" -maxdepth 1 -name 'checkpoint-[0-9]*' -printf '%f\n' | sed 's/checkpoint-//' | sort -n | tr '\n' ' ')
fi

echo "== 2/4 generations ($GEN_TASK, $N_PROMPTS prompts, seed $GEN_SEED) at steps 0 $STEPS"
for step in 0 $STEPS; do
    model=$REF
    [[ "$step" != 0 ]] && model="$OUT/dpo/checkpoint-$step"
    if [[ ! -d "$model" && "$step" != 0 ]]; then
        echo "no checkpoint for step $step: $model" >&2
        exit 2
    fi
    if ! compgen -G "$OUT/gen/step-$step/*/results_*.json" > /dev/null; then
        # shellcheck disable=SC2086
        run lm_eval --model "$GEN_MODEL" --model_args "pretrained=$model" --device "$DEVICE" --tasks "$GEN_TASK" \
            --metadata "$METADATA" "${GEN_KWARGS[@]}" --output_path "$OUT/gen/step-$step" --log_samples $GEN_ARGS
    fi
done

WINRATES=()
for step in $STEPS; do WINRATES+=("$OUT/winrate/step-$step/winrate.json"); done
if [[ -z "$JUDGE_ARGS" ]]; then
    echo "== 3/4 no JUDGE_ARGS: the commands left are" >&2
    for step in $STEPS; do
        echo "rankacc winrate $OUT/gen/step-$step $OUT/gen/step-0 --judge-url URL --judge-model NAME" \
             "--output $OUT/winrate/step-$step --step $step" >&2
    done
    echo "rankacc plot-training $OUT/dpo --winrate ${WINRATES[*]}" >&2
    exit 0
fi

echo "== 3/4 win rate of each checkpoint against step 0 (the reference)"
for step in $STEPS; do
    if [[ ! -f "$OUT/winrate/step-$step/winrate.json" ]]; then
        # shellcheck disable=SC2086
        run rankacc winrate "$OUT/gen/step-$step" "$OUT/gen/step-0" $JUDGE_ARGS \
            --output "$OUT/winrate/step-$step" --step "$step" $WINRATE_ARGS
    fi
done

echo "== 4/4 figure 4"
run rankacc plot-training "$OUT/dpo" --winrate "${WINRATES[@]}"
echo "done: $OUT (figure: $OUT/dpo/figure4_distance.png; judgements: $OUT/winrate/step-*/judgements.jsonl)"
