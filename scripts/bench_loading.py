"""Benchmark: loading a big training split to its fixed 1,000-document sample.

Generates, in a temporary folder outside the repository, one file of the real
size in each source's hub schema:

* ``shp``: 348,718 SHP rows (``stanfordnlp/SHP`` schema, about 549 MB of
  JSONL), posts of 3 to 8 comments, some pairs listed again (same and
  contradicting preference), some posts whose comments tie;
* ``hh``: 160,800 HH-RLHF rows (.jsonl.gz), the real rows of
  ``../shared/data/hh-rlhf-harmless-base/test.jsonl.gz`` repeated, each copy
  made distinct (a generated stand-in of the same shape when it is absent);
* ``ultrafeedback``: 63,967 UltraFeedback rows of 4 completions
  (``openbmb/UltraFeedback`` schema, annotations included), some all tied,
  some with one text under two scores.

Then times ``loading.documents.documents`` (what ``load_docs`` runs) for the tasks
``rankacc_shp_train`` (pairs), ``rankacc_shp_multi_train``, HH train and
UltraFeedback train, each run in a fresh subprocess: the load time, the whole
process's wall time and its peak RSS (``ru_maxrss`` of the child). With
``--before REF`` (default ``HEAD``) the package as committed at REF is
unpacked (``git archive``, read-only) into the temporary folder and run in
the same way, alternating with the working tree's, so the table shows
same-run ratios; the two must return the same documents (a hash of them) and
log the same drop counts, or the script says so and exits 1.

    python scripts/bench_loading.py                 # before (HEAD) vs now, 3 runs each
    python scripts/bench_loading.py --before none --runs 1 --scale 0.1
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH_REAL = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base" / "test.jsonl.gz"
ROWS = {"shp": 348_718, "hh": 160_800, "ultrafeedback": 63_967}
#: label -> (file, documents() keyword arguments)
JOBS = {
    "SHP pairs (rankacc_shp_train)": ("shp", {"source": "shp", "split": "train", "form": "pairs"}),
    "SHP multi (rankacc_shp_multi_train)": ("shp", {"source": "shp", "split": "train", "form": "multi"}),
    "HH train": ("hh", {"source": "hh_rlhf", "split": "train"}),
    "UltraFeedback train": ("ultrafeedback", {"source": "ultrafeedback", "split": "train"}),
}
FILES = {"shp": "shp_train.jsonl", "hh": "hh_train.jsonl.gz", "ultrafeedback": "ultrafeedback_train.jsonl"}

CHILD = r"""
import hashlib, json, logging, resource, sys, time
start = time.perf_counter()
from lm_eval_rankacc.loading import documents as loader
kwargs = json.loads(sys.argv[1])
notes = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            notes.append(record.getMessage())
logging.getLogger("lm-eval").addHandler(Keep())
t0 = time.perf_counter()
docs = loader.documents(**kwargs)
load = time.perf_counter() - t0
digest = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()
print(json.dumps({"load_s": load, "process_s": time.perf_counter() - start, "docs": len(docs),
                  "digest": digest, "notes": notes, "loader": loader.__file__,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


# ----------------------------------------------------------------- generated files
def _blob(rng: random.Random, size: int = 1 << 22) -> str:
    """Random words to cut texts from; about one word in 300 non-ASCII (an
    accent, a dash, curly quotes, an emoji), as in real Reddit text."""
    words = ["the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "for", "was", "on", "are",
             "with", "they", "be", "at", "one", "have", "this", "from", "by", "hot", "word", "but",
             "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use",
             "your", "how", "said", "an", "each", "which", "do", "their", "time", "if", "will", "way",
             "\n\n", "physics?", "because", "EDIT:", "I'd"]
    rare = ["café", "naïve", "—", "“quoted”", "😀"]
    out, n = [], 0
    while n < size:
        word = rng.choice(rare) if rng.random() < 1 / 300 else rng.choice(words)
        out.append(word)
        n += len(word) + 1
    return " ".join(out)


def _text(rng: random.Random, blob: str, mean: int) -> str:
    length = max(1, int(rng.expovariate(1 / mean)))
    start = rng.randrange(0, len(blob) - length - 1)
    return blob[start:start + length].strip() or "ok"


def shp_rows(n: int, rng: random.Random):
    """SHP rows, post by post: each post's comments paired up; about 1% of
    pairs listed again (a quarter of them swapped with the other label) and
    some posts whose comments all share one (score, time)."""
    blob = _blob(rng)
    emitted, post = 0, 0
    while emitted < n:
        post += 1
        history = _text(rng, blob, 500)
        tied = rng.random() < 0.01
        comments = [(f"c{post}_{j}", 7 if tied else rng.randrange(1, 500),
                     1_500_000_000 if tied else 1_500_000_000 + rng.randrange(10**6), _text(rng, blob, 340))
                    for j in range(rng.randrange(3, 9))]
        pairs = [(a, b) for i, a in enumerate(comments) for b in comments[i + 1:]]
        rng.shuffle(pairs)
        for a, b in pairs[: rng.randrange(1, len(pairs) + 1)]:
            rows = [_shp_row(post, history, a, b)]
            if rng.random() < 0.01:
                rows.append(_shp_row(post, history, b, a, flip=rng.random() < 0.25))
            for row in rows:
                if emitted < n:
                    emitted += 1
                    yield row


def _shp_row(post: int, history: str, a: tuple, b: tuple, flip: bool = False) -> dict:
    (ida, sa, ta, xa), (idb, sb, tb, xb) = a, b
    label = int((sa, ta) > (sb, tb))
    return {"post_id": f"p{post}", "domain": "askscience_train", "upvote_ratio": 0.97, "history": history,
            "c_root_id_A": ida, "c_root_id_B": idb, "created_at_utc_A": ta, "created_at_utc_B": tb,
            "score_A": sa, "score_B": sb, "human_ref_A": xa, "human_ref_B": xb,
            "labels": 1 - label if flip else label, "seconds_difference": float(abs(ta - tb)),
            "score_ratio": max(sa, sb) / max(1, min(sa, sb))}


def hh_rows(n: int, rng: random.Random):
    """Real HH rows repeated; copy k starts its first human turn with ``(k)``."""
    if HH_REAL.is_file():
        with gzip.open(HH_REAL, "rt", encoding="utf-8") as f:
            real = [json.loads(line) for line in f if line.strip()]
    else:  # a stand-in of the same shape
        blob = _blob(rng)
        real = []
        for _ in range(2000):
            prompt = f"\n\nHuman: {_text(rng, blob, 300)}\n\nAssistant:"
            real.append({key: f"{prompt} {_text(rng, blob, 250)}" for key in ("chosen", "rejected")})
    for i in range(n):
        row = real[i % len(real)]
        tag = f"\n\nHuman: ({i // len(real)}) "
        yield {key: text.replace("\n\nHuman: ", tag, 1) for key, text in row.items()}


def ultrafeedback_rows(n: int, rng: random.Random):
    """UltraFeedback rows of 4 scored completions with their annotations;
    about 2% all tied, 1% with one text under two scores."""
    blob = _blob(rng)
    for _ in range(n):
        kind = rng.random()
        responses = [_text(rng, blob, 1000) for _ in range(4)]
        scores = [rng.choice([2.0, 3.5, 5.0, 6.5, 7.0, 8.5, 9.0]) for _ in range(4)]
        if kind < 0.02:
            scores = [7.0] * 4
        elif kind < 0.03:
            responses[1], scores[1] = responses[0], scores[0] - 1
        models = [f"model-{j}" for j in range(4)]
        yield {
            "source": "evol_instruct", "instruction": _text(rng, blob, 500), "models": models,
            "completions": [_uf_completion(rng, blob, m, r, s) for m, r, s in zip(models, responses, scores)],
            "correct_answers": ["None"], "incorrect_answers": ["None"],
        }


def _uf_completion(rng: random.Random, blob: str, model: str, response: str, score: float) -> dict:
    def rating() -> dict:
        return {"Rating": str(rng.randrange(1, 6)), "Rationale": _text(rng, blob, 150)}

    return {
        "annotations": {
            "helpfulness": {**rating(), "Rationale For Rating": _text(rng, blob, 150), "Type": ["1", "2"]},
            "honesty": rating(), "instruction_following": rating(),
            "truthfulness": {**rating(), "Rationale For Rating": _text(rng, blob, 150), "Type": ["0"]},
        },
        "critique": _text(rng, blob, 250), "custom_system_prompt": "You are a helpful assistant.",
        "fine-grained_score": 4.0, "model": model, "overall_score": score, "principle": "helpfulness",
        "response": response,
    }


GENERATORS = {"shp": shp_rows, "hh": hh_rows, "ultrafeedback": ultrafeedback_rows}


def generate(folder: Path, name: str, n: int) -> Path:
    """The file of ``name`` with ``n`` rows (kept from an earlier run when it has them)."""
    path = folder / FILES[name]
    marker = path.with_name(path.name + f".{n}.done")
    if marker.exists() and path.exists():
        return path
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in GENERATORS[name](n, random.Random(0)):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    marker.touch()
    return path


# ----------------------------------------------------------------- runs
def old_package(folder: Path, ref: str) -> Path:
    """The package as committed at ``ref``, unpacked under ``folder`` (git archive: no change to git state)."""
    target = folder / f"package-{ref.replace('/', '_')}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "lm_eval_rankacc", "tasks"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_once(kwargs: dict, pythonpath: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kwargs)], env=env, capture_output=True,
                          text=True, cwd=pythonpath)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({kwargs}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, help="where the generated files go (default: a new temporary folder)")
    parser.add_argument("--before", default="HEAD", help="git ref of the code to compare with, or 'none'")
    parser.add_argument("--runs", type=int, default=3, help="runs per job and code (medians are reported)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts")
    parser.add_argument("--jobs", nargs="*", choices=list(JOBS), default=list(JOBS))
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="rankacc-bench-loading-"))
    folder.mkdir(parents=True, exist_ok=True)
    codes = {"now": ROOT}
    if args.before != "none":
        codes = {f"before ({args.before})": old_package(folder, args.before), **codes}
    print(f"files in {folder}; {os.cpu_count()} cores; python {sys.version.split()[0]}")
    failed = False
    header = "| job | rows | file MB | code | load s (median) | process s | peak RSS MiB | documents |"
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for label in args.jobs:
        name, kwargs = JOBS[label]
        n = max(10, int(ROWS[name] * args.scale))
        path = generate(folder, name, n)
        kwargs = {**kwargs, "task": label.split()[0].lower(), "data_files": str(path)}
        results: dict[str, list[dict]] = {code: [] for code in codes}
        for _ in range(args.runs):
            for code, where in codes.items():  # alternating, so load on the machine hits both alike
                results[code].append(run_once(kwargs, where))
        seen = {(r["digest"], tuple(r["notes"])) for runs in results.values() for r in runs}
        for code, runs in results.items():
            print(f"| {label} | {n:,} | {path.stat().st_size / 1e6:.0f} | {code} "
                  f"| {statistics.median(r['load_s'] for r in runs):.2f} "
                  f"| {statistics.median(r['process_s'] for r in runs):.2f} "
                  f"| {statistics.median(r['peak_mib'] for r in runs):.0f} | {runs[0]['docs']} |")
        if len(codes) == 2:
            before, now = (results[c] for c in codes)
            ratio = statistics.median(r["load_s"] for r in before) / statistics.median(r["load_s"] for r in now)
            memory = statistics.median(r["peak_mib"] for r in before) / statistics.median(r["peak_mib"] for r in now)
            print(f"|  | | | before / now | {ratio:.2f}x | | {memory:.2f}x | |")
        if len(seen) != 1:
            failed = True
            print(f"!! {label}: the runs differ in documents or drop counts: {sorted(seen)}")
        else:
            notes = next(iter(seen))[1]
            print(f"   same documents and notes in every run: {'; '.join(notes) or '(no drops)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
