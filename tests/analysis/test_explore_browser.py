"""``rankacc explore``'s page in a real headless Chromium
(tests/helpers/headless_chromium.py): the list holds every document, filters
and sorting change what is shown, the counts equal the analyses', the deep
link opens its document, keys step through them, hostile strings stay text.
Skips with a reason where no Chromium is installed (CI: ``make browser``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.analysis.test_explore import HOSTILE, _entries
from tests.analysis.test_leaderboard import _LM_EVAL_SEVERAL
from tests.helpers.headless_chromium import Chromium, chromium_binary
from tests.helpers.rankacc_samples import doc, write_run

from lm_eval_rankacc import analysis
from lm_eval_rankacc.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
#: One response of a megabyte, with every hostile string in it.
BIG = ("x" * 1_000_000) + "".join(HOSTILE)


@pytest.fixture()
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium on PATH (make browser installs Debian's chromium)")
    with Chromium.start(binary, tmp_path / "profile") as b:
        yield b


@pytest.fixture()
def page_file(tmp_path):
    """An explorer page over a reference and a policy: 160 + 25 documents (two
    pages of the list), one with a 1 MB response."""
    tasks = {}
    for name, seed in (("ref", 0), ("dpo", 1)):
        a = _entries(seed, 160)
        a[7] = doc("doc-7", a[7]["loglik"], [1, 2], None, a[7]["n_tokens"], prompt="big " + HOSTILE[0],
                   responses=[BIG, "small"])
        tasks[name] = write_run(tmp_path / name, {"rankacc_a": a, "rankacc_b": _entries(seed + 10, 25)}, model=name)
    out = tmp_path / "explore.html"
    assert main(["explore", str(tasks["dpo"]), "--reference", str(tasks["ref"]), "--beta", "1", "-o", str(out)]) == 0
    return out, tasks


def _open(browser, url):
    view = browser.open(url)
    view.wait_for("document.body.getAttribute('data-ready') === '1'")
    _idle(view)
    return view


def _idle(view) -> None:
    """Wait for the page's actions (blocks inflated, list redrawn) to finish."""
    view.wait_for("document.body.getAttribute('data-busy') === '0'")


def _ids(view) -> list[str]:
    return view.evaluate("Array.from(document.querySelectorAll('#rows tr')).map(r => r.getAttribute('data-doc-id'))")


def _set(view, select: str, value: str) -> None:
    view.evaluate(f"(function () {{ var s = document.getElementById({json.dumps(select)}); "
                  f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()")
    _idle(view)


def _counts(view) -> dict:
    return json.loads(view.evaluate("document.getElementById('counts').getAttribute('data-counts')"))


def test_list_filters_counts_and_sorting(browser, page_file):
    out, runs = page_file
    view = _open(browser, out.as_uri())
    seen = []
    while True:  # page through the list
        seen += _ids(view)
        if view.evaluate("document.getElementById('page-info').textContent").startswith("page 2 of 2"):
            break
        view.click("#next")
    assert len(seen) == 185 and set(seen) == {f"doc-{k}" for k in range(160)}
    assert _counts(view)["documents"] == 185
    report = analysis.flips(runs["ref"], runs["dpo"], bootstrap=0)
    ideal = analysis.idealized(runs["ref"], [runs["dpo"]], betas=[1.0], bootstrap=0)
    hard = {r["task"]: r for r in analysis.hardness(runs["ref"], beta=1.0).sections[0].rows}
    for t, task in enumerate(("rankacc_a", "rankacc_b")):
        for ties, setting in (("none", "excluded"), ("", "included")):
            _set(view, "f-task", str(t))
            _set(view, "f-ties", ties)
            counts = _counts(view)
            expected = {r["category"]: r["count"] for r in report.sections[0].rows
                        if r["task"] == task and r["ties"] == setting}
            assert dict(zip(analysis_categories(), counts["flips"][0])) == expected
            rows = {r["model"]: r for r in ideal.sections[0].rows if r["task"] == task and r["ties"] == setting}
            for k, model in enumerate(("ref", "dpo")):
                x = counts["runs"][k]
                assert x["R"] / x["R_n"] == pytest.approx(rows[model]["R"], abs=1e-12)
                assert x["R_norm"] / x["R_norm_n"] == pytest.approx(rows[model]["R_norm"], abs=1e-12)
            i = counts["ideal"]
            assert i["correct"] / i["n"] == pytest.approx(rows["ref"]["R_star@1"], abs=1e-12)
            assert i["pairs"] == hard[task]["pairs"]
            assert i["c_positive"] / i["pairs"] == pytest.approx(hard[task]["share_c_positive"])
    _set(view, "f-task", "0")
    _set(view, "f-ties", "only")
    assert set(_ids(view)) == {f"doc-{k}" for k in range(2, 160, 5)} - {"doc-7"}  # every fifth (doc-7 made a pair)
    _set(view, "f-ties", "")
    _set(view, "f-n", "more")
    assert set(_ids(view)) == {f"doc-{k}" for k in range(3, 160, 5)}
    _set(view, "f-n", "")
    _set(view, "f-flip-0", "2")  # incorrect -> correct
    assert all(c == "incorrect->correct" for c in view.evaluate(
        "Array.from(document.querySelectorAll('#rows tr')).map(r => r.cells[9].textContent)"))
    _set(view, "f-flip-0", "")
    _set(view, "f-sort", "margin")
    margins = [m for m in _margins(view) if m is not None]
    assert margins == sorted(margins) and len(margins) > 50
    _set(view, "f-sort", "-c")
    cs = view.evaluate("Array.from(document.querySelectorAll('#rows tr')).map(r => r.cells[11].textContent)")
    values = [float(c) for c in cs if c != "n/a"]
    assert values == sorted(values, reverse=True) and values[0] > 0
    _search(view, "R1 OF DOC 17 ")
    assert _ids(view) == ["doc-17"]


def _search(view, text: str) -> None:
    view.evaluate(f"(function () {{ var q = document.getElementById('f-search'); q.value = {json.dumps(text)};"
                  " q.dispatchEvent(new Event('input')); })()")
    _idle(view)


def analysis_categories():
    from lm_eval_rankacc.core.theory import CATEGORIES

    return CATEGORIES


def _margins(view) -> list:
    cells = view.evaluate("Array.from(document.querySelectorAll('#rows tr')).map(r => r.cells[6].textContent)")
    return [None if c == "n/a" else float(c) for c in cells]


def test_deep_link_keys_and_hostile_strings(browser, page_file):
    out, _ = page_file
    view = _open(browser, out.as_uri() + "#doc=doc-7")
    detail = "document.getElementById('detail')"
    assert view.evaluate(f"{detail}.getAttribute('data-doc-id')") == "doc-7"
    responses = view.evaluate(f"Array.from({detail}.querySelectorAll('.response pre')).map(p => p.textContent)")
    assert responses == [BIG, "small"]  # the megabyte, NUL byte and RTL override as text
    assert view.evaluate(f"{detail}.querySelector('.turn').textContent") == "prompt" + "big " + HOSTILE[0]
    assert view.evaluate("typeof window.pwned") == "undefined"
    assert view.evaluate("document.querySelectorAll('img, a, iframe, object').length") == 0
    assert view.evaluate("document.querySelectorAll('script').length") == 4  # runs, rows, one block of texts, code
    for key, expected in (("j", "doc-8"), ("j", "doc-9"), ("k", "doc-8")):
        view.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, "text": key})
        view.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key})
        _idle(view)
        assert view.evaluate(f"{detail}.getAttribute('data-doc-id')") == expected
    assert view.evaluate("location.hash") == "#doc=doc-8"
    view.click("#rows tr[data-doc-id='doc-1']")
    _idle(view)
    assert view.evaluate(f"{detail}.getAttribute('data-doc-id')") == "doc-1"
    view.evaluate("document.querySelector(\"#rows tr[data-doc-id='doc-3']\").focus()")
    view.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    _idle(view)
    assert view.evaluate(f"{detail}.getAttribute('data-doc-id')") == "doc-3"  # Enter opens the focused row
    view.click("#rows tr[data-doc-id='doc-1']")
    _idle(view)
    turns = view.evaluate(f"Array.from({detail}.querySelectorAll('.turn .role')).map(r => r.textContent)")
    assert turns == ["user", "assistant", "user"]  # an HH-RLHF transcript shown as turns
    view.evaluate("location.hash = '#doc=doc-33'")
    view.wait_for(f"{detail}.getAttribute('data-doc-id') === 'doc-33'")


def test_texts_in_several_blocks(browser, page_file, tmp_path):
    from lm_eval_rankacc.analysis.explore import explore
    from lm_eval_rankacc.report.explore import render_explore

    _, runs = page_file
    ex = explore([runs["dpo"]], reference=runs["ref"])
    page = tmp_path / "blocks.html"
    page.write_text(render_explore(ex, chunk_size=7), encoding="utf-8")
    view = _open(browser, page.as_uri() + "#doc=doc-150")
    assert view.evaluate("document.querySelectorAll('script').length") == 3 + -(-185 // 7)
    pre = "Array.from(document.querySelectorAll('#detail .response pre')).map(p => p.textContent)"
    assert view.evaluate(pre) == ex.texts(150)["responses"]
    _search(view, "r2 of doc 163 ")
    assert _ids(view) == []  # doc-163 of rankacc_a does not exist (160 documents), of rankacc_b neither
    _search(view, "r2 of doc 28 ")
    assert _ids(view) == ["doc-28"]  # three responses, rankacc_a only (rankacc_b has 25 documents)


@pytest.mark.slow
def test_readme_demo_runs_screenshot(browser, tmp_path, offline_env):
    """The README's analysis example (the demo model and a tiny random model
    on rankacc_demo, from lm_eval's command line) explored, and its
    screenshot: docs/explore.png is this picture (RANKACC_EXPLORE_SCREENSHOT=docs/explore.png)."""
    from lm_eval_rankacc.loading.demo_model import ensure_smollm2
    from tests.helpers.tiny_model import make_tiny_model

    try:
        smol = ensure_smollm2()
    except Exception as err:  # noqa: BLE001 - not downloaded: nothing to explore
        pytest.skip(f"the demo model is not cached: {err}")
    tiny = make_tiny_model(tmp_path / "tiny-seed0", seed=0)
    out = tmp_path / "compare"
    hf = ["--model", "hf", "--device", "cpu", "--batch_size", "16", "--log_samples", "--tasks", "rankacc_demo",
          "--output_path", str(out), "--model_args"]
    proc = subprocess.run([sys.executable, "-c", _LM_EVAL_SEVERAL, json.dumps([[*hf, f"pretrained={smol}"],
                                                                         [*hf, f"pretrained={tiny}"]])],
                          env=offline_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ref = next(p for p in out.iterdir() if Path(smol).name in p.name or "smol" in p.name.lower())
    pol = next(p for p in out.iterdir() if p != ref)
    page = tmp_path / "explore.html"
    assert main(["explore", str(pol), "--reference", str(ref), "-o", str(page)]) == 0
    view = _open(browser, page.as_uri() + "#doc=" + _first_flip(ref, pol))
    flips = analysis.flips(ref, pol, bootstrap=0).sections[0].rows
    counts = _counts(view)
    assert view.evaluate("document.getElementById('detail').getAttribute('data-doc-id')") == _first_flip(ref, pol)
    assert counts["documents"] == 33
    assert dict(zip(analysis_categories(), counts["flips"][0])) == {
        r["category"]: r["count"] for r in flips if r["ties"] == "included"}
    png = view.screenshot(full_page=False)
    assert png[:8] == PNG and len(png) > 20_000
    target = os.environ.get("RANKACC_EXPLORE_SCREENSHOT")
    if target:
        Path(target).write_bytes(png)


def _first_flip(ref: Path, pol: Path) -> str:
    """The first document DPO could flip (the reference ranks it wrongly, the idealized model rightly)."""
    from lm_eval_rankacc.analysis.explore import explore

    rows = explore([pol], reference=ref).rows
    return next((r["id"] for r in rows if r["ideal"]["could_flip"]), rows[0]["id"])
