"""Benchmark: ``rankacc explore``'s page at scale, in headless Chromium.

Two cases, each built in memory from the HH-RLHF harmless-base test split's
texts (``../shared/data``, cycled to the size asked; a prompt and two
responses per document, about 800 characters) with random log-likelihoods:
``1,000 documents x 10 runs`` (a reference and nine policies) and
``100,000 documents x 2 runs``. Per case: the time to build and render the
page (Python), its size, and in the browser (medians of ``--repeats``):
the time from navigation to the page being ready, a filter (a flip
category), a sort (margin), opening a document (its block of texts inflated)
and the first free-text search (every block inflated). Prints one table and
the machine (cores, memory, CPU, load).

    python scripts/bench_explore.py            # both cases
    python scripts/bench_explore.py --docs 1000 --runs 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.headless_chromium import Chromium, chromium_binary  # noqa: E402

from lm_eval_rankacc.analysis.explore import explore  # noqa: E402
from lm_eval_rankacc.analysis.in_memory import in_memory_run  # noqa: E402
from lm_eval_rankacc.report.explore import render_explore  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base" / "test.jsonl.gz"


def _texts() -> list[tuple[str, list[str]]]:
    """(prompt, [chosen, rejected]) of every HH-RLHF pair; short generated texts without the data."""
    if not DATA.exists():
        return [(f"\n\nHuman: question {k}?\n\nAssistant:", [f"answer {k} " * 40, f"other {k} " * 40])
                for k in range(1000)]
    out = []
    for line in gzip.open(DATA, "rt", encoding="utf-8"):
        row = json.loads(line)
        cut = row["chosen"].rfind("\n\nAssistant:") + len("\n\nAssistant:")
        out.append((row["chosen"][:cut], [row["chosen"][cut:].strip(), row["rejected"][cut:].strip()]))
    return out


def _runs(n_docs: int, n_runs: int):
    rng = np.random.default_rng(0)
    ranks = [[1, 2] if k % 10 else [1, 1] for k in range(n_docs)]
    texts = _texts()
    runs = []
    for r in range(n_runs):
        ll = rng.normal(-60, 15, size=(n_docs, 2)).round(3).tolist()
        run = in_memory_run(f"run{r}", {"rankacc_hh": (ll, ranks)},
                            n_tokens={"rankacc_hh": rng.integers(5, 200, size=(n_docs, 2)).tolist()})
        for k, d in enumerate(run.tasks["rankacc_hh"].docs):  # the HH texts (hashes are the generated ones)
            d["prompt"], d["responses"] = texts[k % len(texts)]
        runs.append(run)
    return runs


def _ms(view, script: str) -> float:
    """Milliseconds from ``script`` to the page's actions being done (blocks inflated, list drawn)."""
    expression = (f"(async function () {{ var t = performance.now(); {script}; await window.exploreIdle(); "
                  "return performance.now() - t; })()")
    reply = view.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
    if "exceptionDetails" in reply or not isinstance(reply["result"].get("value"), (int, float)):
        raise RuntimeError(f"{script}: {reply}")
    return reply["result"]["value"]


def _set(select: str, value: str) -> str:
    return (f"var s = document.getElementById('{select}'); s.value = '{value}'; "
            "s.dispatchEvent(new Event('change'))")


def _browser_figures(page: Path, profile: Path, repeats: int) -> dict[str, float]:
    figures: dict[str, list[float]] = {k: [] for k in ("open", "filter", "sort", "document", "search")}
    with Chromium.start(chromium_binary(), profile, timeout=120) as browser:
        for rep in range(repeats):
            t = time.perf_counter()
            view = browser.open(page.as_uri())
            view.wait_for("document.body.getAttribute('data-ready') === '1' && "
                          "document.body.getAttribute('data-busy') === '0'", timeout=300)
            figures["open"].append(1000 * (time.perf_counter() - t))
            figures["filter"].append(_ms(view, _set("f-flip-0", "2")))
            figures["sort"].append(_ms(view, _set("f-sort", "margin")))
            figures["document"].append(_ms(view, "document.querySelector('#rows tr').click()"))
            figures["search"].append(_ms(view, "var q = document.getElementById('f-search'); q.value = 'zebra'; "
                                               "q.dispatchEvent(new Event('input'))"))
            view.send("Page.close")
    return {k: statistics.median(v) for k, v in figures.items()}


def case(n_docs: int, n_runs: int, repeats: int, folder: Path) -> dict:
    runs = _runs(n_docs, n_runs)
    t = time.perf_counter()
    ex = explore(runs[1:], reference=runs[0])
    html = render_explore(ex)
    build = time.perf_counter() - t
    page = folder / f"explore_{n_docs}x{n_runs}.html"
    page.write_text(html, encoding="utf-8")
    row = {"case": f"{n_docs:,} docs x {n_runs} runs", "build_s": build, "page_MB": page.stat().st_size / 1e6}
    row.update(_browser_figures(page, folder / "profile", repeats))
    return row


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, {cpu}, load {os.getloadavg()[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if chromium_binary() is None:
        sys.exit("no chromium on PATH (make browser)")
    cases = [(args.docs, args.runs)] if args.docs else [(1000, 10), (100_000, 2)]
    print(f"machine: {machine()}; texts: {'HH-RLHF harmless-base test' if DATA.exists() else 'generated'}")
    print("| case | build+render (s) | page (MB) | open (ms) | filter (ms) | sort (ms) | open a document (ms) "
          "| first search (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n_docs, n_runs in cases:
            r = case(n_docs, n_runs or 2, args.repeats, Path(tmp))
            print(f"| {r['case']} | {r['build_s']:.1f} | {r['page_MB']:.1f} | {r['open']:.0f} | {r['filter']:.0f} | "
                  f"{r['sort']:.0f} | {r['document']:.0f} | {r['search']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
