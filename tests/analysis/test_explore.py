"""``rankacc explore``'s data (analysis/explore.py) and page (report/explore.py)
without a browser: every count of the rows equals what ``rankacc flips`` /
``idealized`` / ``hardness`` report for the same runs; margins and c checked
against the log-likelihoods written into the samples files."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest
from tests.analysis.test_leaderboard import lm_run
from tests.helpers.rankacc_samples import doc, write_run

from lm_eval_rankacc import analysis
from lm_eval_rankacc.analysis.explore import explore
from lm_eval_rankacc.cli import main
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.core.theory import CATEGORIES
from lm_eval_rankacc.report.explore import json_block, render_explore

HOSTILE = ["</script><script>window.pwned = 1</script>", '<img src=x onerror="window.pwned = 1">',
           '<a href="javascript:window.pwned = 1">click</a>', "\u202eevil RTL override\u202c", "nul \x00 byte",
           "line\u2028sep\u2029para & amp;"]


def _entries(seed: int, n_docs: int = 40) -> list[dict]:
    """Pairs (some with votes' alpha), human ties and three-response documents
    with log-likelihoods drawn from ``seed`` (the same documents for every seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_docs):
        kind = k % 5
        ranks = [[1, 2], [2, 1], [1, 1], [1, 2, 3], [1, 2]][kind]
        alpha = [0.8, None, None, None, 0.6][kind]
        ll = [float(x) for x in np.round(rng.normal(-20, 4, size=len(ranks)), 3)]
        tokens = [int(t) for t in np.random.default_rng(1000 + k).integers(3, 30, size=len(ranks))]
        prompt = f"\n\nHuman: question {k}?\n\nAssistant: answer\n\nHuman: more {k}\n\nAssistant:" if k % 2 else None
        responses = [f"r{j} of doc {k} " + HOSTILE[(k + j) % len(HOSTILE)] for j in range(len(ranks))]
        out.append(doc(f"doc-{k}", ll, ranks, alpha, tokens, prompt=prompt, responses=responses))
    return out


@pytest.fixture()
def runs(tmp_path):
    """A reference and two policies over the same documents of two tasks."""
    paths = {}
    for name, seed in (("ref", 0), ("dpo1", 1), ("dpo2", 2)):
        paths[name] = write_run(tmp_path / name, {"rankacc_a": _entries(seed), "rankacc_b": _entries(seed + 10, 25)},
                                model=name)
    return paths


def _subset(rows, task, ties):
    return [r for r in rows if r["task"] == task and (ties == "included" or not r["tie"])]


def test_counts_equal_the_analyses(runs):
    beta = 1.0
    ex = explore([runs["dpo1"], runs["dpo2"]], reference=runs["ref"], beta=beta)
    assert ex.runs == ["ref", "dpo1", "dpo2"] and ex.compared == [(0, 1), (0, 2)]
    assert len(ex.rows) == 65 and [r["id"] for r in ex.rows[:2]] == ["doc-0", "doc-1"]
    for j, policy in enumerate(("dpo1", "dpo2")):
        report = analysis.flips(runs["ref"], runs[policy], bootstrap=0)
        for row in report.sections[0].rows:
            mine = _subset(ex.rows, row["task"], row["ties"])
            assert sum(r["flips"][j] == row["category"] for r in mine) == row["count"], row
            assert len(mine) == row["n"]
    ideal = analysis.idealized(runs["ref"], [runs["dpo1"], runs["dpo2"]], betas=[beta], bootstrap=0)
    checked = 0
    for row in ideal.sections[0].rows:
        mine = _subset(ex.rows, row["task"], row["ties"])
        k = ex.runs.index(row["model"])
        assert np.mean([r["runs"][k]["R"] for r in mine]) == pytest.approx(row["R"], abs=1e-12)
        assert np.mean([r["runs"][k]["R_norm"] for r in mine]) == pytest.approx(row["R_norm"], abs=1e-12)
        if row["model"] == "ref":
            assert np.mean([r["ideal"]["correct"] for r in mine]) == pytest.approx(row["R_star@1"], abs=1e-12)
            checked += 1
    assert checked == 4  # two tasks, ties excluded and included
    hard = analysis.hardness(runs["ref"], beta=beta)
    for row in hard.sections[0].rows:
        cs = [r["ideal"]["c"] for r in ex.rows if r["task"] == row["task"] and r["ideal"]["c"] is not None]
        assert len(cs) == row["pairs"] and np.mean(np.array(cs) > 0) == pytest.approx(row["share_c_positive"])
    by_id = {(d["task"], d["id"]): d for d in hard.documents}
    for r in ex.rows:
        if r["ideal"]["c"] is not None:
            d = by_id[(r["task"], r["id"])]
            assert (r["ideal"]["c"], r["ideal"]["threshold"]) == (d["c"], d["loss_threshold"])


def test_rows_against_the_written_scores(runs):
    ex = explore([runs["dpo1"]], reference=runs["ref"], beta=0.1)
    written = {"ref": _entries(0), "dpo1": _entries(1)}
    for row in (r for r in ex.rows if r["task"] == "rankacc_a"):
        k = int(row["id"].split("-")[1])
        for r, name in enumerate(("ref", "dpo1")):
            entry = written[name][k]
            ll, ranks = entry["loglik"], entry["doc"]["ranks"]
            cells = row["runs"][r]
            assert cells["loglik"] == ll and cells["n_tokens"] == entry["n_tokens"]
            assert cells["per_token"] == [a / b for a, b in zip(ll, entry["n_tokens"])]
            if len(ll) == 2 and ranks[0] != ranks[1]:
                w = ranks.index(1)
                assert cells["margin"] == pytest.approx(ll[w] - ll[1 - w])
                assert cells["R"] == (ll[w] >= ll[1 - w])  # Def. 2.3 on a pair
                assert row["ideal"]["c"] == pytest.approx(ll[1 - w] - ll[w]) if r == 0 else True
            if len(ll) == 3:  # ranks 1, 2, 3: correct iff the scores are in that order
                assert cells["R"] == (ll[0] >= ll[1] >= ll[2])
                assert cells["model_ranks"] == [int(x) for x in np.argsort(np.argsort(-np.array(ll))) + 1]
        ideal = row["ideal"]
        assert ideal["could_flip"] == (ideal["correct"] and not row["runs"][0]["R"])
    assert any(r["ideal"]["could_flip"] for r in ex.rows)  # the test sees both outcomes
    assert not all(r["ideal"]["could_flip"] for r in ex.rows)
    texts = ex.texts(1)  # an HH-RLHF transcript: its turns
    assert [t[0] for t in texts["turns"]] == ["user", "assistant", "user"]
    assert texts["turns"][2][1] == "more 1"


def test_without_reference_the_first_run_is_the_base(runs):
    ex = explore([runs["dpo1"], runs["dpo2"]])
    assert ex.compared == [(0, 1)] and all(r["ideal"] is None for r in ex.rows)
    report = analysis.flips(runs["dpo1"], runs["dpo2"], bootstrap=0)
    for row in report.sections[0].rows:
        assert sum(r["flips"][0] == row["category"] for r in _subset(ex.rows, row["task"], row["ties"])) == row["count"]


def test_documents_and_tasks_present_in_only_some_runs(tmp_path, runs):
    only_a = write_run(tmp_path / "only_a", {"rankacc_a": _entries(3)}, model="only_a")
    ex = explore([only_a], reference=runs["ref"])
    assert {r["task"] for r in ex.rows} == {"rankacc_a"}
    assert any("missing task(s) rankacc_b" in n for n in ex.notes)
    other = write_run(tmp_path / "other", {"rankacc_a": _entries(3, 39)}, model="other")
    with pytest.raises(RunError, match="score different documents"):
        explore([other], reference=runs["ref"])


def _blocks(page: str) -> dict:
    """The page's data blocks, decoded: id -> JSON value."""
    out = {}
    for kind, name, body in re.findall(r'<script type="application/([a-z0-9+]+)" id="([^"]+)">(.*?)</script>', page,
                                       flags=re.S):
        assert "<" not in body and ">" not in body and "&" not in body and "\u2028" not in body
        out[name] = json.loads(body if kind == "json" else gzip.decompress(base64.b64decode(body)))
    return out


def test_page_keeps_hostile_strings_inside_its_data(runs):
    ex = explore([runs["dpo1"]], reference=runs["ref"])
    page = render_explore(ex, chunk_size=30)
    blocks = _blocks(page)
    assert list(blocks) == ["explore-data", "rows-data", "chunk-0", "chunk-1", "chunk-2"]
    texts = [t for k in range(3) for t in blocks[f"chunk-{k}"]["texts"]]
    assert len(texts) == len(blocks["rows-data"]) == len(ex.rows) == 65
    assert [t["responses"] for t in texts] == [ex.texts(k)["responses"] for k in range(65)]
    assert sum(h in r for h in HOSTILE for t in texts for r in t["responses"]) >= 65  # intact, as written
    scores = [s for k in range(3) for s in blocks[f"chunk-{k}"]["scores"]]
    assert [s[1]["loglik"] for s in scores] == [r["runs"][1]["loglik"] for r in ex.rows]  # exact
    assert [row[1] for row in blocks["rows-data"]] == [r["id"] for r in ex.rows]
    markup = re.sub(r'<script type="application/[a-z0-9+]+" id=.*?</script>', "", page, flags=re.S)
    for remote in ("http://", "https://", "<link", "@import", "src="):  # self-contained: nothing fetched
        assert remote not in markup
    assert json.loads(json_block("\ud800 lone")) == "\ud800 lone"
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page


def test_cli_writes_the_page_and_rejects_bad_input(tmp_path, runs, capsys):
    out = tmp_path / "explore.html"
    assert main(["explore", str(runs["dpo1"]), "--reference", str(runs["ref"]), "-o", str(out)]) == 0
    assert "65 documents" in capsys.readouterr().out and out.read_text().startswith("<!DOCTYPE html>")
    assert main(["explore", str(runs["dpo1"]), "-o", str(tmp_path / "x.txt")]) == 2
    assert "-o" in capsys.readouterr().err
    assert main(["explore", str(tmp_path / "nowhere"), "-o", str(tmp_path / "y.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["explore", str(runs["dpo1"]), "-o", str(tmp_path / "no" / "y.html")]) == 2


def test_leaderboard_links_each_model_to_its_explorer_page(tmp_path, capsys):
    root = tmp_path / "out"
    ref = lm_run(root, {"rankacc_a": _entries(0)}, model="ref").parent
    lm_run(root, {"rankacc_a": _entries(1)}, model="dpo<1>")
    lm_run(root, {"rankacc_a": _entries(2)}, model="nosamples", samples=False)
    page = tmp_path / "board.html"
    argv = ["leaderboard", str(root), "--html", str(page), "--reference", str(ref), "--explore"]
    assert main(argv) == 0, capsys.readouterr().err
    html = page.read_text()
    links = dict((m, h) for h, m in re.findall(r'<a class="explore" href="([^"]+)"[^>]*>([^<]*)</a>', html))
    assert set(links) == {"ref", "dpo&lt;1&gt;"}  # the model's own cell; nosamples logged no samples
    pages = sorted((tmp_path / "board_explore").iterdir())
    assert [p.name for p in pages] == sorted(h.split("/")[1] for h in links.values())
    dpo = page.parent / links["dpo&lt;1&gt;"]
    blocks = _blocks(dpo.read_text())
    data = blocks["explore-data"]
    assert data["runs"] == ["ref", "dpo<1>"] and data["reference"] is True
    flips = analysis.flips(ref, root / "dpo<1>", bootstrap=0).sections[0].rows
    counts = np.bincount([row[10][0] for row in blocks["rows-data"]], minlength=4)
    assert dict(zip(CATEGORIES, counts.tolist())) == {r["category"]: r["count"] for r in flips if r["ties"] == "included"}
    assert main(["leaderboard", str(root), "--html", str(tmp_path / "b2.html"), "--explore"]) == 2
    assert "--reference" in capsys.readouterr().err and not (tmp_path / "b2.html").exists()
