"""``rankacc winrate`` end to end against hostile judges (issue 20, item 10),
through the command line, not only the HTTP client:

- a judge answering 429 with ``Retry-After``: the wait is honoured (longer
  than the run's own backoff) and capped (:data:`MAX_RETRY_AFTER`), the run
  completes, and every retry is counted where attempts are recorded
  (``attempts`` of each line of ``judgements.jsonl``, their sum in
  ``winrate.json``);
- a judge echoing the API key in its error bodies (429, 500) and in its
  replies: nothing of the key in ``judgements.jsonl``, ``winrate.json``,
  stdout or stderr, while the judgements say what happened.

The judges are tests/helpers/judge_server.py's server with the handler
below; the runs and the expected win rates (from the outputs' lengths) are
test_winrate.py's.
"""

from __future__ import annotations

import json
import subprocess
import time
import types
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import judge_server
from tests.helpers.commands import command
from tests.helpers.judge_server import JudgeServer, longer
from tests.judging.test_winrate import BASELINE, POLICY, PROMPTS, hand_scores, write_gen_run

from lm_eval_rankacc.cli import main
from lm_eval_rankacc.judging import judges
from lm_eval_rankacc.judging.http import MAX_RETRY_AFTER

KEY = "sk-e2e-SECRET-key-4242"
#: prompts whose every reply is the key itself (unparsed), and whose every ask fails with HTTP 500 echoing it
KEY_REPLY, ALWAYS_500 = {1, 4}, {2}


class _Handler(judge_server._Handler):
    """``rate_limited``: 429 with ``Retry-After: <retry_after>`` at the first ask of each message, then the
    longer answer. ``echo``: 429 (``Retry-After: 1``), then 500, both bodies echoing the Authorization
    header; then the key as the reply for :data:`KEY_REPLY`, 500 for :data:`ALWAYS_500`, else the verdict."""

    def _reply(self, status: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        srv = self.server.judge  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        auth = self.headers.get("Authorization") or ""
        user = body["messages"][-1]["content"]
        with srv.lock:
            srv.requests.append({"user": user, "authorization": auth, "time": time.monotonic()})
            srv.seen[user] += 1
            seen = srv.seen[user]
        k = next(i for i, p in enumerate(PROMPTS) if p in user)
        echo = {"error": {"message": f"rejected the request with {auth}", "key": auth.removeprefix("Bearer ")}}
        if seen == 1:
            wait = srv.retry_after if srv.mode == "rate_limited" else "1"
            return self._reply(429, echo if srv.mode == "echo" else {"error": "slow down"}, {"Retry-After": wait})
        if srv.mode == "echo" and (seen == 2 or k in ALWAYS_500):
            return self._reply(500, echo)
        a, b = judge_server._ANSWERS_RE.search(user).group("a", "b")
        text = KEY if srv.mode == "echo" and k in KEY_REPLY else longer(a, b)
        self._reply(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})


class HostileJudge(JudgeServer):
    def __init__(self, mode: str, retry_after: str = "2", key: str | None = None):
        super().__init__(mode, key=key)
        self.retry_after = retry_after
        self._httpd.RequestHandlerClass = _Handler


@pytest.fixture
def runs(tmp_path):
    return write_gen_run(tmp_path / "policy", PROMPTS, POLICY, "a"), write_gen_run(tmp_path / "base", PROMPTS,
                                                                                    BASELINE, "b")


def _rankacc(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([command("rankacc"), "winrate", *args], check=False, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _outputs(folder: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(x) for x in (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines()]
    return lines, json.loads((folder / "winrate.json").read_text(encoding="utf-8"))


def test_429_retry_after_is_honoured_and_the_retries_counted(runs, tmp_path, offline_env):
    pol, base = runs
    with HostileJudge("rate_limited", retry_after="2") as srv:
        proc = _rankacc([str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m", "--retries", "1",
                         "--workers", "12", "--bootstrap", "0", "--output", str(tmp_path / "o")], offline_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines, summary = _outputs(tmp_path / "o")
    assert summary["win_rate"] == pytest.approx(np.mean(hand_scores(POLICY, BASELINE)))
    assert (summary["unparsed"], summary["judge_calls"], summary["attempts"]) == (0, 12, 24)  # 12 retries
    assert all(x["attempts"] == 2 and x["error"] is None for x in lines)
    times: dict[str, list[float]] = {}
    for r in srv.requests:
        times.setdefault(r["user"], []).append(r["time"])
    assert len(times) == 12 and all(len(t) == 2 for t in times.values())
    # the server's 2 s, not the run's own first backoff of 1 s
    assert min(t[1] - t[0] for t in times.values()) >= 2.0 - 0.05


def test_a_huge_retry_after_is_capped(runs, tmp_path, monkeypatch, capsys):
    pol, base = runs
    slept: list[float] = []
    monkeypatch.setattr(judges, "time", types.SimpleNamespace(sleep=slept.append))  # record, do not wait
    with HostileJudge("rate_limited", retry_after="100000") as srv:  # 27 hours
        rc = main(["winrate", str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m",
                   "--retries", "1", "--workers", "2", "--bootstrap", "0", "--output", str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    assert slept == [MAX_RETRY_AFTER] * 12 and len(srv.requests) == 24
    assert _outputs(tmp_path / "o")[1]["attempts"] == 24


def test_a_judge_echoing_the_key_leaks_nothing(runs, tmp_path, offline_env):
    pol, base = runs
    out = tmp_path / "o"
    with HostileJudge("echo", key=KEY) as srv:
        proc = _rankacc([str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m", "--retries", "2",
                         "--workers", "12", "--bootstrap", "0", "--judge-key-env", "MY_JUDGE_KEY",
                         "--output", str(out)], {**offline_env, "MY_JUDGE_KEY": KEY})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(srv.requests) == 36 and all(r["authorization"] == f"Bearer {KEY}" for r in srv.requests)
    written = "".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))
    assert KEY not in proc.stdout + proc.stderr + written
    lines, summary = _outputs(out)
    judged = [k for k in range(6) if k not in KEY_REPLY | ALWAYS_500]
    assert summary["win_rate"] == pytest.approx(np.mean(hand_scores([POLICY[k] for k in judged],
                                                                    [BASELINE[k] for k in judged])))
    assert (summary["unparsed"], summary["unparsed_verdicts"], summary["attempts"]) == (3, 6, 36)
    by_doc = {k: [x for x in lines if x["doc_id"] == k] for k in range(6)}
    for k in KEY_REPLY:  # the key as the reply: kept, redacted
        assert [(x["verdict"], x["raw"], x["error"]) for x in by_doc[k]] == [("unparsed", "***", None)] * 2
    for k in ALWAYS_500:  # the key in the error body: counted with its reason, redacted
        assert all(x["verdict"] == "unparsed" and "HTTP 500" in x["error"] and "***" in x["error"]
                   for x in by_doc[k])
    assert all(x["attempts"] == 3 for x in lines)
