"""One bounded JSON POST to a judge's API: a total deadline, a size cap, no redirect, secrets redacted.

Built on ``httpx`` (docs/architecture.md). Every way a request can fail
becomes a :class:`JudgeError` (worth asking again) or a
:class:`RequestRejected` (not asked again) with a one-line reason, never an
exception of the HTTP library, so the caller counts it and goes on.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

#: The most bytes a judge's reply may have (a verdict is a few hundred bytes, with log-probabilities a few KB).
MAX_REPLY_BYTES = 4 * 1024 * 1024
#: The longest ``Retry-After`` honoured, in seconds (a longer one is waited this long).
MAX_RETRY_AFTER = 120.0
#: HTTP statuses worth asking again (rate limits, timeouts, conflicts); 5xx are too.
RETRY_STATUSES = {408, 409, 425, 429}


class JudgeError(Exception):
    """A judge call that failed in a way worth retrying (HTTP 5xx/429, timeout,
    connection, short or oversized body); ``retry_after``: the seconds the
    server asked to wait (``Retry-After``), or None."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RequestRejected(JudgeError):
    """A failure of this one request not worth asking again (HTTP 400, a
    redirect): counted unparsed."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``***``
    (the longest first, so a secret holding another is hidden whole)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None, list[str]]:
    """(``url`` without ``user:password@``, (user, password) or None, the
    secrets it held: the password and the whole ``user:password``)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, []
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user, password = parts.username or "", parts.password or ""
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return clean, (user, password), [s for s in (password, userinfo) if s]


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP
    date), at most :data:`MAX_RETRY_AFTER`; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _read_capped(resp: httpx.Response, timeouts: dict, deadline: float, max_bytes: int) -> bytes:
    """The body, read chunk by chunk: each read may wait only the time left
    before ``deadline``; past it, or past ``max_bytes``, a :class:`JudgeError`."""
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise JudgeError(f"reply of {int(length)} bytes, over the cap of {max_bytes}")
    body = bytearray()
    for chunk in resp.iter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise JudgeError(f"reply over the cap of {max_bytes} bytes: not read further")
        left = deadline - time.monotonic()
        if left <= 0:
            raise JudgeError("no complete reply within the timeout")
        timeouts["read"] = left  # httpcore reads this dict before each read
    return bytes(body)


def _status_error(resp: httpx.Response, body: bytes, where: str, secrets: list[str]) -> JudgeError | None:
    """The error of a reply that is not a 2xx, or None for a 2xx."""
    status = resp.status_code
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        target = resp.headers.get("Location", "")
        same = bool(target) and urlsplit(str(resp.url.join(target)))[:2] == urlsplit(str(resp.url))[:2]
        where_to = "the same origin" if same else "another origin"
        return RequestRejected(redact(f"{where}: HTTP {status} redirect to {where_to} ({target[:200]}): not "
                                      "followed (the API key is never sent elsewhere)", secrets))
    detail = redact(body.decode("utf-8", "replace")[:300], secrets)
    message = f"{where}: HTTP {status}: {detail}"
    if status >= 500 or status in RETRY_STATUSES:
        return JudgeError(message, retry_after(resp.headers.get("Retry-After")))
    if status == 400:
        return RequestRejected(message)
    return Refused(message)


class Refused(Exception):
    """HTTP 401/403/404...: the user's to fix (bad key, model, URL); the caller stops."""


def post_json(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], *,
              timeout: float, secrets: list[str], where: str,
              max_bytes: int = MAX_REPLY_BYTES) -> Any:
    """POST ``body`` as JSON to ``url`` and return the parsed JSON reply,
    the whole call (connection, sending, waiting, reading) within
    ``timeout`` seconds. Raises :class:`JudgeError` / :class:`RequestRejected`
    (their messages redacted of ``secrets``), or ``Refused`` for a 4xx the
    user must fix."""
    deadline = time.monotonic() + timeout
    timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    try:
        request = client.build_request("POST", url, content=json.dumps(body).encode("utf-8"), headers=headers)
        request.extensions["timeout"] = timeouts
        resp = client.send(request, stream=True, follow_redirects=False)
        try:
            data = _read_capped(resp, timeouts, deadline, max_bytes)
        finally:
            resp.close()
    except httpx.TimeoutException:
        raise JudgeError(f"{where}: no complete reply within the timeout ({timeout:g} s)") from None
    except httpx.HTTPError as err:  # connection refused or reset, a body shorter than announced, ...
        raise JudgeError(redact(f"{where}: {type(err).__name__}: {err}", secrets)) from None
    except JudgeError as err:
        raise JudgeError(redact(f"{where}: {err}", secrets)) from None
    error = _status_error(resp, data, where, secrets)
    if error is not None:
        raise error
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise JudgeError(f"{where}: reply is not JSON ({err})") from None
