"""The analyses give the same reports, byte for byte, without the samples cache,
with an empty one and from a full one; from a full one they read no samples
file (``rankacc idealized``, ``flips``, ``compare``, ``leaderboard``, read in
this process and in forked readers)."""

from __future__ import annotations

import pytest

from lm_eval_rankacc.cli import main
from lm_eval_rankacc.outputs import cache, lines
from tests.analysis.test_leaderboard import lm_run
from tests.helpers.rankacc_samples import doc

TASK = "rankacc_demo"


def _runs(tmp_path):
    def entries(shift):
        return [doc(f"d{k}", [-1.0 - (k * 7 % 5) - shift * (k % 2), -2.0 - (k % 3)], [1, 1] if k % 10 == 0 else
                    ([1, 2] if k % 3 else [2, 1]), alpha=None if k % 5 == 0 else 0.75 if k % 3 else 0.25,
                    n_tokens=[3 + k % 4, 2 + k % 3]) for k in range(60)]
    return (lm_run(tmp_path / "ref", {TASK: entries(0.0)}, model="ref").parent,
            lm_run(tmp_path / "pol", {TASK: entries(2.5)}, model="pol").parent)


def _reports(tmp_path, ref, pol, tag) -> dict[str, bytes]:
    commands = {
        "idealized": ["idealized", ref, "--policy", pol, "--bootstrap", "200"],
        "flips": ["flips", ref, pol, "--bootstrap", "200"],
        "compare": ["compare", ref, pol, "--bootstrap", "200"],
        "leaderboard": ["leaderboard", ref, pol, "--reference", ref],
    }
    out = {}
    for name, argv in commands.items():
        target = tmp_path / f"{name}-{tag}.json"
        assert main([*map(str, argv), "--format", "json", "-o", str(target)]) == 0
        out[name] = target.read_bytes()
    return out


@pytest.mark.parametrize("parallel", [False, True])
def test_reports_equal_with_and_without_the_cache(tmp_path, monkeypatch, parallel, parallel_reads):
    if parallel:
        parallel_reads()
    ref, pol = _runs(tmp_path)
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    plain = _reports(tmp_path, ref, pol, "off")
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    cold = _reports(tmp_path, ref, pol, "cold")
    assert len(list((tmp_path / "cache").glob("*" + cache.SUFFIX))) == 2

    def refuse(path):
        raise AssertionError(f"read the samples file {path}")

    monkeypatch.setattr(lines, "blocks", refuse)
    warm = _reports(tmp_path, ref, pol, "warm")
    assert plain == cold == warm
    assert not any(b"samples cache" in report for report in warm.values())


def test_the_leaderboard_checks_the_count_with_remembered_documents(tmp_path, monkeypatch):
    """A second leaderboard takes the documents' digest from beside the cache entry (no entry loaded)
    and still checks the samples' count against a results file changed since."""
    import json

    from lm_eval_rankacc.analysis import leaderboard
    from lm_eval_rankacc.core.errors import RunError
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    entries = [doc(f"d{k}", [-1.0 - k, -2.0], [1, 2]) for k in range(6)]
    results = lm_run(tmp_path / "run", {"rankacc_demo": entries}, "model-a")
    first = leaderboard([results.parent])
    assert list((tmp_path / "cache").glob("*.kept.json"))
    with monkeypatch.context() as patched:
        patched.setattr(cache, "_open_entry", lambda *a: (_ for _ in ()).throw(AssertionError("entry loaded")))
        assert leaderboard([results.parent]).sections[0].rows == first.sections[0].rows
    data = json.loads(results.read_text())
    data["n-samples"]["rankacc_demo"]["effective"] = 7
    results.write_text(json.dumps(data))
    with pytest.raises(RunError, match="holds 6 documents but lm-eval scored 7"):
        leaderboard([results.parent])
