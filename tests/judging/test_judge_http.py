"""The judge's HTTP client (issue 20, item 10) against hostile servers
(tests/helpers/judge_server.py): a deadline per request that a trickling or
endless reply cannot stretch, a size cap, short bodies and redirects as
counted failures, Retry-After honoured, secrets redacted."""

from __future__ import annotations

import time

import pytest

from lm_eval_rankacc.judging.http import JudgeError, MAX_REPLY_BYTES, redact, retry_after, split_credentials
from lm_eval_rankacc.judging.judges import ChatJudge
from tests.helpers.judge_server import JudgeServer

ASK = [{"role": "user", "content": "Which is better? A or B"}]
KEY = "sk-test-secret-0123456789"


def _failure(mode: str, timeout: float = 2.0, **server) -> tuple[str, float]:
    with JudgeServer(mode, **server) as srv:
        judge = ChatJudge(srv.base_url, "m", api_key=KEY, timeout=timeout)
        start = time.monotonic()
        with pytest.raises(JudgeError) as err:
            judge.ask(ASK)
        judge.close()
    return str(err.value), time.monotonic() - start


def test_a_trickling_reply_is_cut_at_the_deadline():
    message, took = _failure("trickle", timeout=1.5)  # 1 byte every 0.5 s for a minute
    assert took < 1.5 + 1.0 and "no complete reply within the timeout" in message, (took, message)
    assert KEY not in message


def test_an_endless_body_is_cut_at_the_deadline_or_the_size_cap():
    message, took = _failure("endless", timeout=3.0)
    assert took < 3.0 + 1.0 and KEY not in message


def test_a_50_mb_reply_is_refused_at_the_cap():
    message, took = _failure("huge", timeout=20.0)
    assert f"over the cap of {MAX_REPLY_BYTES}" in message, message


def test_a_body_shorter_than_its_length_is_a_failure_not_a_traceback():
    message, _ = _failure("short")
    assert "expected 1000" in message and KEY not in message


def test_a_redirect_to_another_origin_is_not_followed():
    with JudgeServer("longer") as other:
        message, _ = _failure("redirect", redirect_to=other.base_url + "/chat/completions")
        assert other.requests == []  # the key never went there
    assert "302 redirect to another origin" in message and "not followed" in message


def test_retry_after_is_read_in_seconds_and_dates_and_capped():
    assert retry_after("2") == 2.0 and retry_after("100000") == 120.0 and retry_after("soon") is None


def test_url_credentials_and_the_key_are_redacted():
    clean, auth, secrets = split_credentials("http://user:pa55word@127.0.0.1:9/v1")
    assert clean == "http://127.0.0.1:9/v1" and auth == ("user", "pa55word") and "pa55word" in secrets
    assert "pa55word" not in redact("failed at http://user:pa55word@127.0.0.1:9/v1", secrets)
    with JudgeServer("echo_key", key=KEY) as srv:
        judge = ChatJudge(srv.base_url, "m", api_key=KEY, timeout=5)
        try:
            reply = judge.ask(ASK)
        except JudgeError as err:
            reply = str(err)
        judge.close()
    assert KEY not in reply
