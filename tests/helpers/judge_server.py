"""A deterministic OpenAI-compatible chat judge on 127.0.0.1, for the win-rate tests.

``POST /v1/chat/completions`` reads the two answers out of the user message
(the ``# Answer A`` / ``# Answer B`` sections of rankacc's judge prompt) and
replies, by ``mode``:

* ``longer``: the label of the longer answer, ``tie`` when both are equally long;
* ``always_a``: ``A`` whatever it is shown (a judge with full position bias);
* ``garbage``: text no strict parser accepts;
* ``garbage_then``: ``garbage`` for the first ``bad`` requests of each distinct
  message, then as ``longer``;
* ``error_then``: HTTP 500 for the first ``bad`` requests of each distinct message, then as ``longer``;
* ``error_marked``: HTTP 500 for every user message holding ``[fail]``, else as ``longer``;
* ``reject_long``: HTTP 400 for a user message longer than ``bad`` characters, else as ``longer``.

Hostile modes for the HTTP client (bounded loops; each stops when the client hangs up):

* ``trickle``: announces 1,000 bytes, then sends one byte every 0.5 s (at most 120);
* ``endless``: a reply with no length, 1 KiB chunks every 10 ms, at most 20,000 (20 MiB);
* ``short``: announces 1,000 bytes, sends 10, closes;
* ``redirect``: 302 to ``redirect_to`` (another server's URL);
* ``huge``: a valid 50 MB JSON reply;
* ``rate_limited``: 429 with ``Retry-After: 1`` for the first ``bad`` requests of each message, then as ``longer``;
* ``echo_key``: replies with the bearer token it received;
* ``logprobs``: as ``longer``, with ``top_logprobs`` at the first token: the chosen label ``p_top``, the
  other label and `` tie`` sharing the rest (``None`` content when logprobs were not asked for).

With ``key`` set, a request without ``Authorization: Bearer <key>`` gets 401.
Every request (body and Authorization header) is kept in ``requests``.
Standard library only.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from typing import Any

from tests.helpers import openai_server
GARBAGE = "I think both answers have merits; it depends."
_ANSWERS_RE = re.compile(r"# Answer A\n\n(?P<a>.*)\n\n# Answer B\n\n(?P<b>.*)\n\n# Your verdict", re.DOTALL)


def longer(a: str, b: str) -> str:
    """The deterministic judge: the longer answer's label, tie for equal lengths."""
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"


class _Handler(openai_server._Handler):
    """openai_server's handler (its JSON replies), answering chat completions by the judge's mode."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, obj: Any) -> None:
        self._send_json(status, obj)

    def _raw(self, status: int, length: int | None, chunks, pause: float) -> None:
        """Headers (``length`` announced, or none), then ``chunks`` one by one, ``pause`` s apart."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:  # the client hung up
            pass
        self.close_connection = True

    def _hostile(self, srv: JudgeServer, auth: str | None, seen: int) -> bool:
        """Answer in a hostile mode; False when the mode is not one."""
        if srv.mode == "trickle":
            self._raw(200, 1000, (b" " for _ in range(120)), 0.5)
        elif srv.mode == "endless":
            self._raw(200, None, (b" " * 1024 for _ in range(20_000)), 0.01)
        elif srv.mode == "short":
            self._raw(200, 1000, [b'{"choices": '], 0.0)
        elif srv.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", srv.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif srv.mode == "huge":
            pad = b" " * (50 * 1024 * 1024)
            data = b'{"choices": [{"message": {"content": "A"}}], "pad": "' + pad + b'"}'
            self._raw(200, len(data), (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20)), 0.0)
        elif srv.mode == "rate_limited" and seen <= srv.bad:
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        srv: JudgeServer = self.server.judge  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        auth = self.headers.get("Authorization")
        with srv.lock:
            srv.requests.append({"path": self.path, "body": body, "authorization": auth, "time": time.monotonic()})
            user = body["messages"][-1]["content"]
            srv.seen[user] += 1
            seen = srv.seen[user]
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "no such route"}})
        if srv.key and auth != f"Bearer {srv.key}":
            return self._send(401, {"error": {"message": "bad key"}})
        if self._hostile(srv, auth, seen):
            return None
        if srv.mode == "error_then" and seen <= srv.bad:
            return self._send(500, {"error": {"message": "overloaded"}})
        if srv.mode == "error_marked" and "[fail]" in user:
            return self._send(500, {"error": {"message": "overloaded"}})
        if srv.mode == "reject_long" and len(user) > srv.bad:
            return self._send(400, {"error": {"message": "context too long"}})
        m = _ANSWERS_RE.search(user)
        if srv.mode == "echo_key":
            text = (auth or "").removeprefix("Bearer ")
        elif srv.mode == "always_a":
            text = "A"
        elif srv.mode == "garbage" or (srv.mode == "garbage_then" and seen <= srv.bad):
            text = GARBAGE
        else:
            text = longer(m.group("a"), m.group("b"))
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if srv.mode == "logprobs" and body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": text, "logprob": math.log(srv.p_top),
                                               "top_logprobs": logprob_tops(text, srv.p_top)}]}
        self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice]})


def logprob_tops(label: str, p_top: float) -> list[dict[str, float]]:
    """``top_logprobs`` of the first token: ``label`` with ``p_top``, the other two answers (spelt as
    tokens with a leading space, as tokenizers do) with half the rest each, and a filler token."""
    others = [w for w in ("A", "B", "tie") if w != label]
    rest = (1 - p_top) * 0.9 / 2
    return [{"token": label, "logprob": math.log(p_top)}] + [
        {"token": " " + w, "logprob": math.log(rest)} for w in others] + [
        {"token": "The", "logprob": math.log((1 - p_top) * 0.1)}]


class JudgeServer:
    """``with JudgeServer(mode) as srv: srv.base_url`` (``http://127.0.0.1:<port>/v1``)."""

    def __init__(self, mode: str = "longer", bad: int = 0, key: str | None = None, redirect_to: str = "",
                 p_top: float = 0.7):
        self.mode, self.bad, self.key, self.redirect_to, self.p_top = mode, bad, key, redirect_to, p_top
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True  # a hostile reply still sending never blocks the shutdown
        self._httpd.block_on_close = False
        self._httpd.judge = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=10)
        self._httpd.server_close()
