#!/usr/bin/env bash
# The GPU run of issue 22 item 4 in one command: install, then scoring and DPO side by side, one table.
#
#   scripts/gpu_bench.sh            on a GPU machine (at most TOTAL_S = 480 s, installation included)
#   scripts/gpu_bench.sh --dry-run  the same steps on CPU with tiny shapes (a test runs it)
#
# Steps, each in its own process group under a time limit (a hang costs its limit, never the budget):
#   install  `pip install -e .` and `trl` unless importable (WHEELS=folder: from that wheel folder only)
#   model    a random-initialised GPT-NeoX of Pythia-1.4B's shape (scripts/bench_training.py's), bf16,
#            saved with a tokenizer (TOKENIZER=folder; default the demo model's); --dry-run: 2 layers of
#            64, the tiny offline tokenizer of `rankacc tiny-model`
#   scoring  scripts/bench_scoring.py on all clean real HH-RLHF pairs: stock `hf` at each batch size of
#            HF_BATCHES (the fastest whole process is the baseline), `hf-prefix` with prefix_route=packed
#            and prefix_route=cached
#   dpo      scripts/bench_training.py: rankacc, TRL's DPOTrainer, TRL with precompute_ref_log_probs
#   table    one markdown table (printed, and OUT/table.md), every run's JSON (OUT/raw.json), the log
#
# Variables: OUT (default a new temp folder; an existing table there is kept unless --force), DATA,
# TOKENIZER, WHEELS, PYTHON, TOTAL_S, N (pairs, 0 = all), HF_BATCHES, PREFIX_BATCH, DPO_PAIRS,
# DPO_BATCH, DPO_MAX_LENGTH, THREADS; the step limits INSTALL_S, MODEL_S, SCORE_S (each scoring run),
# DPO_S (each DPO run). docs/benchmarks.md#gpu-run says what it measures.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRY=0 FORCE=0
for arg in "$@"; do
  case $arg in
    --dry-run) DRY=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_bench.sh: unknown option $arg (options: --dry-run, --force, --help)" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
DATA=${DATA:-$ROOT/../shared/data/hh-rlhf-harmless-base/test.jsonl.gz}
if (( DRY )); then
  DEVICE=cpu; TOTAL_S=${TOTAL_S:-170}; N=${N:-50}; HF_BATCHES=${HF_BATCHES:-"4 8"}; PREFIX_BATCH=${PREFIX_BATCH:-4}
  DPO_PAIRS=${DPO_PAIRS:-8}; DPO_BATCH=${DPO_BATCH:-4}; THREADS=${THREADS:-1}
  INSTALL_S=${INSTALL_S:-60} MODEL_S=${MODEL_S:-40} SCORE_S=${SCORE_S:-45} DPO_S=${DPO_S:-50}
else
  DEVICE=cuda; TOTAL_S=${TOTAL_S:-480}; N=${N:-0}; HF_BATCHES=${HF_BATCHES:-"64 32 128"}; PREFIX_BATCH=${PREFIX_BATCH:-64}
  DPO_PAIRS=${DPO_PAIRS:-512}; DPO_BATCH=${DPO_BATCH:-8}; THREADS=${THREADS:-$(nproc)}
  INSTALL_S=${INSTALL_S:-90} MODEL_S=${MODEL_S:-60} SCORE_S=${SCORE_S:-75} DPO_S=${DPO_S:-75}
fi
DTYPE=bfloat16 DPO_MAX_LENGTH=${DPO_MAX_LENGTH:-512} MIN_STEP_S=10
START=$(date +%s); DEADLINE=$((START + TOTAL_S))

if [[ -z ${OUT:-} ]]; then OUT=$(mktemp -d -t gpu-bench-XXXXXX); fi
mkdir -p "$OUT" || { echo "gpu_bench.sh: cannot create OUT=$OUT" >&2; exit 2; }
for f in table.md raw.json log.txt; do
  if [[ -e $OUT/$f && $FORCE == 0 ]]; then
    echo "gpu_bench.sh: $OUT/$f exists (an earlier run's); pass --force to replace it, or another OUT" >&2; exit 2
  fi
done
: >"$OUT/log.txt"
WORK=$(mktemp -d -t gpu-bench-work-XXXXXX)
STEP_PID=
cleanup() { [[ -n $STEP_PID ]] && kill -TERM -- "-$STEP_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "gpu_bench.sh: interrupted" >&2; exit 130' INT TERM
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 PYTHONUNBUFFERED=1
cd "$ROOT" || exit 2

mkdir -p "$WORK/logs"
export ROOT WORK PYTHON DRY DEVICE DTYPE TOKENIZER=${TOKENIZER:-} WHEELS=${WHEELS:-}

# run_limited SECONDS CMD...: CMD in a process group of its own; TERM, then KILL, the whole group at the limit.
run_limited() {
  local limit=$1; shift
  setsid bash -c '"$@"' bash "$@" &
  STEP_PID=$!
  ( trap 'kill "$sp" 2>/dev/null; exit 0' TERM; sleep "$limit" & sp=$!; wait "$sp"
    kill -TERM -- "-$STEP_PID" 2>/dev/null; sleep 10 & sp=$!; wait "$sp"; kill -KILL -- "-$STEP_PID" 2>/dev/null ) &
  local watcher=$! rc
  wait "$STEP_PID"; rc=$?
  kill -TERM "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
  STEP_PID=
  if (( rc == 143 || rc == 137 )); then rc=124; fi
  return "$rc"
}

# step NAME BUDGET CMD...: one step under min(BUDGET, what is left of TOTAL_S); its log in WORK/logs/NAME.log
# (spaces as _), its line in WORK/steps.tsv (name, status, seconds, note), both on stdout too.
step() {
  local name=$1 budget=$2; shift 2
  local left=$((DEADLINE - $(date +%s))) log="$WORK/logs/${name// /_}.log" t0 rc status note secs
  if (( left < MIN_STEP_S )); then
    printf '%s\tnot run\t0\tthe %s s budget was spent\n' "$name" "$TOTAL_S" >>"$WORK/steps.tsv"
    echo "-- $name: not run (the $TOTAL_S s budget was spent)"; return 1
  fi
  (( budget > left )) && budget=$left
  echo "-- $name (at most $budget s) ..."
  t0=$(date +%s.%N)
  run_limited "$budget" "$@" >"$log" 2>&1; rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  { echo "===== $name: $*"; cat "$log"; } >>"$OUT/log.txt"
  case $rc in
    0) status=ok note= ;;
    124) status="timed out" note="after $budget s" ;;
    *) status=failed note="exit $rc: $(grep -v '^[[:space:]]*$' "$log" | tail -1 | cut -c1-160 | tr '\t' ' ')" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$note" >>"$WORK/steps.tsv"
  echo "   $name: $status in $secs s${note:+ ($note)}"
  return "$rc"
}

# ------------------------------------------------------------------ install
install_all() {
  local src=() failed=0
  [[ -n $WHEELS ]] && src=(--no-index --find-links "$WHEELS" --no-build-isolation)
  if "$PYTHON" -c "import lm_eval_rankacc as p, lm_eval, sys; from lm_eval.api.registry import get_model
get_model('hf-prefix'); sys.exit(not p.__file__.startswith('$ROOT/'))" 2>/dev/null; then
    echo "lm-eval-rankacc: installed from this checkout"
  else
    echo "lm-eval-rankacc: pip install -e . ${src[*]}"
    "$PYTHON" -m pip install -q -e . "${src[@]}" || { echo "INSTALL FAILED: lm-eval-rankacc (pip install -e .)"; failed=1; }
  fi
  if "$PYTHON" -c "import trl" 2>/dev/null; then
    echo "trl: installed ($("$PYTHON" -c 'import trl; print(trl.__version__)'))"
  else
    echo "trl: pip install trl ${src[*]}"
    "$PYTHON" -m pip install -q "trl>=1.16" "${src[@]}" || { echo "INSTALL FAILED: trl (the TRL rows will fail)"; failed=1; }
  fi
  return "$failed"
}

# ------------------------------------------------------------------ machine and model
machine() {
  "$PYTHON" - "$WORK/machine.json" "$DEVICE" <<'EOF'
import json, os, platform, sys
import torch, transformers
info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "cpus": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")}
for name in ("lm_eval", "trl"):
    try:
        info[name] = __import__(name).__version__
    except Exception as err:  # named in the table's header
        info[name] = f"not importable ({type(err).__name__})"
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info["gpu"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB"
elif sys.argv[2] == "cuda":
    sys.exit("no CUDA device is visible to torch: run on a GPU machine, or pass --dry-run")
json.dump(info, open(sys.argv[1], "w"))
print(info)
EOF
}

make_model() {
  "$PYTHON" - "$WORK/model" "$DRY" "$TOKENIZER" "$DTYPE" <<'EOF'
import subprocess, sys
from pathlib import Path
sys.path.insert(0, "scripts")
import bench_training  # its Pythia-1.4B shape and builder, reused

target, dry, tokenizer, dtype = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4]
if dry:  # the same builder with tiny shapes, and the offline tokenizer of `rankacc tiny-model`
    from lm_eval_rankacc.loading.tiny_model import make_tiny_model
    tokenizer = tokenizer or str(make_tiny_model(target.parent / "tiny-tokenizer"))
    shape = dict(bench_training.NEOX_1_4B, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=256, vocab_size=384)
elif not tokenizer:
    done = subprocess.run([sys.executable, "-m", "lm_eval_rankacc.loading.demo_model"], capture_output=True, text=True)
    if done.returncode:
        sys.exit("no tokenizer: the demo model could not be made (offline?); set TOKENIZER to a tokenizer folder")
    tokenizer = done.stdout.strip()
print("model:", bench_training.make_neox(target, tokenizer, dtype, shape=shape if dry else None), "tokenizer:", tokenizer)
EOF
}
export -f install_all machine make_model

# ------------------------------------------------------------------ the runs
score() {  # METHOD BATCH: one bench_scoring run, its JSON in WORK
  step "scoring $1 batch $2" "$SCORE_S" "$PYTHON" scripts/bench_scoring.py --model "$WORK/model" --data "$DATA" \
    --n "$N" --kinds pairs --methods "$1" --batch-size "$2" --device "$DEVICE" --dtype "$DTYPE" \
    --threads "$THREADS" --json "$WORK/scoring_$1_$2.json"
}

dpo() {  # IMPL: one bench_training run (its table in the step's log)
  step "dpo $1" "$DPO_S" "$PYTHON" scripts/bench_training.py --model "$WORK/model" --data "$DATA" \
    --pairs "$DPO_PAIRS" --batch-size "$DPO_BATCH" --max-length "$DPO_MAX_LENGTH" --impls "$1" \
    --device "$DEVICE" --dtype "$DTYPE" --threads "$THREADS"
}

echo "gpu_bench.sh$( ((DRY)) && echo ' --dry-run'): $DEVICE $DTYPE, at most $TOTAL_S s; OUT=$OUT"
[[ -f $DATA ]] || { echo "gpu_bench.sh: no data at $DATA (the real HH-RLHF harmless-base test split); set DATA" >&2; exit 2; }
step install "$INSTALL_S" install_all
step machine 60 machine || { echo "gpu_bench.sh: $(tail -1 "$WORK/logs/machine.log")" >&2; exit 2; }
if step model "$MODEL_S" make_model; then
  read -r -a batches <<<"$HF_BATCHES"
  score hf "${batches[0]}"
  score hf-prefix-packed "$PREFIX_BATCH"
  score hf-prefix-cached "$PREFIX_BATCH"
  for impl in rankacc trl trl-precompute; do dpo "$impl"; done
  for batch in "${batches[@]:1}"; do score hf "$batch"; done
fi

# ------------------------------------------------------------------ the table
"$PYTHON" - "$WORK" "$OUT" "$DRY" "$TOTAL_S" "$(($(date +%s) - START))" "$HF_BATCHES" "$PREFIX_BATCH" <<'EOF'
import json, sys
from pathlib import Path

DPO_IMPLS = (("rankacc", "rankacc dpo"), ("trl", "TRL DPOTrainer (defaults)"),
             ("trl-precompute", "TRL, precompute_ref_log_probs"))


def num(text):
    return float(text.replace(",", "").rstrip("%x"))


def read_runs(work, scoring_names):
    """Each scoring run (bench_scoring's JSON) and each DPO run (the row of bench_training's table), by step."""
    scoring, dpo = {}, {}
    for name in scoring_names:
        method, batch = name.split()[1], name.split()[-1]
        f = work / f"scoring_{method}_{batch}.json"
        if f.is_file():
            scoring[name] = json.loads(f.read_text())["runs"]["pairs"][method][0]
    for impl, _ in DPO_IMPLS:
        log = work / "logs" / f"dpo_{impl}.log"
        text = log.read_text().splitlines() if log.is_file() else []
        lines = [line for line in text if line.startswith("|")]
        if len(lines) >= 3:
            head = [c.strip() for c in lines[0].strip("|").split("|")]
            row = dict(zip(head, (c.strip() for c in lines[2].strip("|").split("|"))))
            row["setting"] = next(x for x in text if "parameters;" in x).split(": ", 1)[1].strip()
            dpo[f"dpo {impl}"] = row
    return scoring, dpo


def scoring_rows(scoring, names, best, why):
    rows = []
    for name in names:
        r, label = scoring.get(name), name.split(" ", 1)[1].replace("hf batch", "hf (stock), batch")
        if r is None:
            rows.append(("scoring", label, why(name)))
            continue
        b = scoring[best]
        dll = max(abs(x - y) for x, y in zip(r["logliks"], b["logliks"]))
        rel = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(r["logliks"], b["logliks"]))
        rows.append(("scoring", label + (" = baseline" if name == best else ""), f"{r['wall']:.2f}",
                     f"{r['stock_tokens'] / r['wall']:,.0f}", f"{r['process']:.1f}", f"{b['wall'] / r['wall']:.2f}x",
                     f"{b['process'] / r['process']:.2f}x", f"{r['peak_gib']:.2f}",
                     "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}",
                     f"max dLL vs baseline {dll:.2e} (relative {rel:.1e})"))
    return rows


def dpo_rows(dpo, why):
    rows, trl = [], dpo.get("dpo trl")
    for impl, label in DPO_IMPLS:
        r = dpo.get(f"dpo {impl}")
        if r is None:
            rows.append(("DPO", label, why(f"dpo {impl}")))
            continue
        stage, total_s = num(r["ref + train s"]), num(r["total s"])
        rows.append(("DPO", label + (" = baseline" if impl == "trl" else ""), f"{stage:.1f}", r["tokens/s"],
                     f"{total_s:.1f}", f"{num(trl['ref + train s']) / stage:.2f}x" if trl else "-",
                     f"{num(trl['total s']) / total_s:.2f}x" if trl else "-", r["peak GiB"], r.get("MFU", "n/a"),
                     f"train loss {r['train loss']}"))
    return rows


def header(machine, dry, scoring, best, dpo, hf_batches):
    title = ("DRY RUN of scripts/gpu_bench.sh on CPU with tiny shapes: it shows the steps work, nothing about speed"
             if dry else "scripts/gpu_bench.sh: scoring and DPO on a GPU")
    text = [f"## {title}", "",
            f"{machine.get('gpu', 'no GPU')}; {machine['cpus']} CPU cores ({machine['cpu']}), {machine['memory_gib']} "
            f"GiB; load average {machine['load'][0]} at the start; Python {machine['python']}, torch "
            f"{machine['torch']}, transformers {machine['transformers']}, lm-eval {machine['lm_eval']}, TRL "
            f"{machine['trl']}.", ""]
    if best:
        b = scoring[best]
        text.append(f"Scoring: {b['docs']:,} clean HH-RLHF harmless-base test pairs ({len(b['logliks']):,} requests; "
                    f"{b['stock_tokens']:,} tokens as stock hf runs them, {b['needed_tokens']:,} with each prompt "
                    f"once: bound {b['stock_tokens'] / b['needed_tokens']:.2f}x), {b['params'] / 1e6:,.1f}M "
                    f"parameters; the baseline is stock hf at its fastest whole process over batch sizes "
                    f"{', '.join(hf_batches)}.")
    if dpo:
        text.append(f"DPO: {next(iter(dpo.values()))['setting']}.")
    return text


def footer(rows, steps, dry, elapsed, total):
    done = [r for r in rows if len(r) > 3]
    return ["", "Goals (issue 22" + (", not measured by a dry run" if dry else "") + "): scoring, hf-prefix >= 3x "
            "stock end to end: " + ", ".join(f"{r[1].split(' batch')[0]} {r[6]}" for r in done
                                             if r[1].startswith("hf-prefix"))
            + "; DPO >= 2x TRL's end-to-end throughput at lower peak memory: "
            + ", ".join(f"{r[1]} {r[6]} at {r[7]} GiB" for r in done if r[0] == "DPO") + ".",
            "", "Timed stage: scoring = `lm.loglikelihood` (the self-check included), DPO = reference pass + "
            "training. Whole: scoring = the whole process (start-up, imports, data, model load); DPO = "
            "bench_training's total (model load, tokenization, reference, training). Speed-ups against the "
            "baseline rows; tokens/s count the same tokens for every row of a job.", "",
            "Steps: " + "; ".join(f"{s['name']} {s['status']} {s['seconds']} s" for s in steps)
            + f"; all {elapsed} s of at most {total} s."]


def main(work, out, dry, total, elapsed, hf_batches, prefix_batch):
    steps = [dict(zip(("name", "status", "seconds", "note"), line.split("\t")))
             for line in (work / "steps.tsv").read_text().splitlines()]
    status = {s["name"]: s for s in steps}

    def why(name):  # the row of a run that gave no figures
        s = status.get(name)
        if s is None:
            return "not run (the model step failed)"
        return "no result (see log.txt)" if s["status"] == "ok" else f"{s['status']} {s['note']}".strip()

    names = [f"scoring hf batch {b}" for b in hf_batches] + [f"scoring hf-prefix-{r} batch {prefix_batch}"
                                                            for r in ("packed", "cached")]
    scoring, dpo = read_runs(work, names)
    hf = [k for k in scoring if k.startswith("scoring hf batch")]
    best = min(hf, key=lambda k: scoring[k]["process"]) if hf else None
    rows = scoring_rows(scoring, names, best, why) + dpo_rows(dpo, why)
    machine = json.loads((work / "machine.json").read_text())
    text = header(machine, dry, scoring, best, dpo, hf_batches)
    text += ["", "| job | implementation | timed stage s | tokens/s | whole s | speed-up, stage | speed-up, whole "
             "| peak GiB | MFU | check |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    text += [f"| {' | '.join(r)} |" if len(r) > 3 else f"| {r[0]} | {r[1]} | {r[2]} | | | | | | | |" for r in rows]
    text += footer(rows, steps, dry, elapsed, total)
    (out / "table.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    (out / "raw.json").write_text(json.dumps({"dry_run": dry, "machine": machine, "steps": steps,
                                              "scoring": scoring, "dpo": dpo}, indent=1), encoding="utf-8")
    print("\n" + "\n".join(text) + f"\n\n(written to {out}/table.md; every run in raw.json; the log in log.txt)")


main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5], sys.argv[6].split(),
     sys.argv[7])
EOF
