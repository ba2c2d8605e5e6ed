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

With ``key`` set, a request without ``Authorization: Bearer <key>`` gets 401.
Every request (body and Authorization header) is kept in ``requests``.
Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
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

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        srv: JudgeServer = self.server.judge  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        auth = self.headers.get("Authorization")
        with srv.lock:
            srv.requests.append({"path": self.path, "body": body, "authorization": auth})
            user = body["messages"][-1]["content"]
            srv.seen[user] += 1
            seen = srv.seen[user]
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "no such route"}})
        if srv.key and auth != f"Bearer {srv.key}":
            return self._send(401, {"error": {"message": "bad key"}})
        if srv.mode == "error_then" and seen <= srv.bad:
            return self._send(500, {"error": {"message": "overloaded"}})
        if srv.mode == "error_marked" and "[fail]" in user:
            return self._send(500, {"error": {"message": "overloaded"}})
        if srv.mode == "reject_long" and len(user) > srv.bad:
            return self._send(400, {"error": {"message": "context too long"}})
        m = _ANSWERS_RE.search(user)
        if srv.mode == "always_a":
            text = "A"
        elif srv.mode == "garbage" or (srv.mode == "garbage_then" and seen <= srv.bad):
            text = GARBAGE
        else:
            text = longer(m.group("a"), m.group("b"))
        self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}]})


class JudgeServer:
    """``with JudgeServer(mode) as srv: srv.base_url`` (``http://127.0.0.1:<port>/v1``)."""

    def __init__(self, mode: str = "longer", bad: int = 0, key: str | None = None):
        self.mode, self.bad, self.key = mode, bad, key
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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
