"""A minimal OpenAI-compatible ``/v1/completions`` server over a local transformers causal LM.

Test helper, standard library only for the serving part (``http.server`` +
``threading``); torch/transformers compute the numbers.  It exists so that
lm-eval's API backend (``--model local-completions``) can run loglikelihood
(and simple generation) tasks offline against a known model, and its results
can be compared with lm-eval's ``hf`` backend on the same model.

Use in tests::

    with CompletionsServer(model_dir) as srv:
        lm = LocalCompletionsAPI(base_url=srv.base_url, tokenizer_backend="huggingface", ...)

or by hand::

    python tests/openai_server.py MODEL_DIR --port 8000
    # base_url: http://127.0.0.1:8000/v1/completions

Endpoints (only 127.0.0.1 is bound):

* ``POST /v1/completions`` (also ``/completions``): OpenAI legacy completions.
  ``prompt`` may be a string, a list of strings, a list of token ids, or a list
  of lists of token ids; strings are tokenized with the model's tokenizer
  *without* special tokens.  Decoding is always greedy (``temperature``,
  ``seed``, ``top_p`` ... are accepted and ignored); ``n`` must be 1.
  With ``echo: true`` and ``logprobs: k`` the reply carries, per prompt::

      tokens         = prompt tokens + generated tokens (token strings)
      token_logprobs = [None, log p(x_1|x_0), ..., log p(x_{N-1}|x_<N-1), log p(g_1|x), ...]
      top_logprobs   = [None, {tok: lp} top-k at position 1, ..., top-k for each generated token]
      text_offset    = character offset of each token in ``text``

  so ``token_logprobs[ctxlen:-1]`` (what lm-eval's ``parse_logprobs`` sums for
  ``max_tokens: 1``) is exactly the continuation's log-probabilities, and
  ``max(top_logprobs[i].values())`` is the top-1 log-probability at position
  ``i`` (keys that decode to the same string keep the larger value).  As in
  the OpenAI API, with ``echo`` the choice's ``text`` is the prompt text
  followed by the generated text; without it, just the generated text.
  Log-probabilities are computed in float32 from ``log_softmax`` of the logits.
* ``GET /v1/models``: the one model; ``GET /health``: ``{"status": "ok"}``.
* Everything else, in particular lm-eval's remote-tokenizer probes
  ``/tokenizer_info`` and ``/tokenize``, answers 404, so that lm-eval's
  ``tokenizer_backend="auto"`` falls back to the huggingface tokenizer.

Malformed JSON or an invalid request answers 400 with an OpenAI-style
``{"error": {...}}`` body.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("openai_server")

MAX_LOGPROBS = 20  # OpenAI caps logprobs at 5 for completions; be a bit more lenient
MAX_BODY_BYTES = 64 * 1024 * 1024


class RequestError(Exception):
    """An invalid request: answered with HTTP 400 and the message."""


class _Engine:
    """Owns the model and tokenizer; computes completions (thread-safe)."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", model_name: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.model_dir = str(model_dir)
        self.model_name = model_name or self.model_dir
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        self.model.to(device).eval()
        self.device = device
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self.eos_token_id = self.tokenizer.eos_token_id
        # transformers >= 5.2x renamed the KV-cache argument/output to ``cache``.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._lock = threading.Lock()

    # ---- request parsing -------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _check_ids(self, ids: list[Any]) -> list[int]:
        for t in ids:
            if isinstance(t, bool) or not isinstance(t, int):
                raise RequestError(f"token ids must be integers, got {t!r}")
            if not 0 <= t < self.vocab_size:
                raise RequestError(f"token id {t} out of range [0, {self.vocab_size})")
        return list(ids)

    def parse_prompts(self, prompt: Any) -> list[tuple[list[int], str | None]]:
        """Return [(token ids, original text or None)] for the request's ``prompt``."""
        if isinstance(prompt, str):
            items: list[Any] = [prompt]
        elif isinstance(prompt, list) and prompt and all(
            isinstance(t, int) and not isinstance(t, bool) for t in prompt
        ):
            items = [prompt]  # a single tokenized prompt
        elif isinstance(prompt, list) and prompt:
            items = prompt
        else:
            raise RequestError("'prompt' must be a string, a list of strings, a list of token ids, or a list of lists of token ids")
        out = []
        for item in items:
            if isinstance(item, str):
                ids, text = self._tokenize(item), item
            elif isinstance(item, list):
                ids, text = self._check_ids(item), None
            else:
                raise RequestError(f"invalid prompt element {item!r}")
            if not ids:
                raise RequestError("empty prompt")
            out.append((ids, text))
        return out

    # ---- computation -----------------------------------------------------

    @staticmethod
    def _cache_of(out: Any) -> Any:
        cache = out.get("cache")
        return cache if cache is not None else out.get("past_key_values")

    def _token_str(self, tid: int) -> str:
        return self.tokenizer.decode([tid], clean_up_tokenization_spaces=False)

    def _tops(self, logp, k: int) -> list[dict[str, float]]:
        """Per row of ``logp`` [T, V]: the top-k as {token string: logprob}.

        Distinct ids can decode to the same string (e.g. partial UTF-8 bytes all
        decode to U+FFFD); on such a collision the larger value is kept, so
        ``max(top.values())`` is always the row's top-1 log-probability.
        """
        if k <= 0:
            return [{} for _ in range(logp.shape[0])]
        vals, idx = self.torch.topk(logp, k, dim=-1)
        out = []
        for vrow, irow in zip(vals.tolist(), idx.tolist()):
            top: dict[str, float] = {}
            for v, i in zip(vrow, irow):  # descending: first (largest) value wins
                top.setdefault(self._token_str(i), v)
            out.append(top)
        return out

    def complete_one(
        self,
        ids: list[int],
        prompt_text: str | None,
        *,
        max_tokens: int,
        echo: bool,
        logprobs: int | None,
        stop: list[str],
    ) -> dict[str, Any]:
        torch = self.torch
        k = logprobs if logprobs is not None else 0
        with self._lock, torch.inference_mode():
            input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
            out = self.model(input_ids=input_ids, use_cache=max_tokens > 1)
            logp = torch.log_softmax(out.logits[0].float(), dim=-1)  # [N, V]

            token_ids: list[int] = []
            token_lps: list[float | None] = []
            tops: list[dict[str, float] | None] = []
            if echo:
                token_ids = list(ids)
                token_lps = [None]
                tops = [None]
                if len(ids) > 1:
                    tgt = torch.tensor(ids[1:], device=logp.device)
                    # position t-1 predicts token t
                    token_lps += logp[:-1].gather(1, tgt[:, None])[:, 0].tolist()
                    if logprobs is not None:
                        tops += self._tops(logp[:-1], k)
                    else:
                        tops += [None] * (len(ids) - 1)

            # greedy generation
            gen: list[int] = []
            finish_reason = "length"
            next_row = logp[-1]
            past = self._cache_of(out) if max_tokens > 1 else None
            gen_text = ""
            for step in range(max_tokens):
                tid = int(torch.argmax(next_row))
                if self.eos_token_id is not None and tid == self.eos_token_id:
                    finish_reason = "stop"
                    break
                gen.append(tid)
                token_ids.append(tid)
                token_lps.append(float(next_row[tid]))
                tops.append(self._tops(next_row[None], k)[0] if logprobs is not None else None)
                gen_text = self.tokenizer.decode(gen, clean_up_tokenization_spaces=False)
                cut = min((gen_text.find(s) for s in stop if s and s in gen_text), default=-1)
                if cut >= 0:
                    gen_text = gen_text[:cut]
                    finish_reason = "stop"
                    break
                if step + 1 < max_tokens:
                    step_out = self.model(
                        input_ids=torch.tensor([[tid]], device=self.device),
                        use_cache=True,
                        **{self._cache_kw: past},
                    )
                    past = self._cache_of(step_out)
                    next_row = torch.log_softmax(step_out.logits[0, -1].float(), dim=-1)

        if prompt_text is None:
            prompt_text = self.tokenizer.decode(ids, clean_up_tokenization_spaces=False)
        text = (prompt_text + gen_text) if echo else gen_text

        lp_obj = None
        if logprobs is not None:
            tokens = [self._token_str(t) for t in token_ids]
            offsets, pos = [], 0 if echo else len(prompt_text)
            for s in tokens:
                offsets.append(pos)
                pos += len(s)
            lp_obj = {
                "tokens": tokens,
                "token_logprobs": token_lps,
                "top_logprobs": tops,
                "text_offset": offsets,
            }
        return {
            "text": text,
            "logprobs": lp_obj,
            "finish_reason": finish_reason,
            "_prompt_tokens": len(ids),
            "_completion_tokens": len(gen),
        }

    def completions(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RequestError("request body must be a JSON object")
        if "prompt" not in body:
            raise RequestError("missing 'prompt'")
        prompts = self.parse_prompts(body["prompt"])

        max_tokens = body.get("max_tokens", 16)
        if max_tokens is None:
            max_tokens = 16
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise RequestError("'max_tokens' must be a non-negative integer")
        echo = bool(body.get("echo", False))
        logprobs = body.get("logprobs")
        if logprobs is not None and (
            isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= MAX_LOGPROBS
        ):
            raise RequestError(f"'logprobs' must be an integer in [0, {MAX_LOGPROBS}]")
        n = body.get("n", 1)
        if n not in (None, 1):
            raise RequestError("only n=1 is supported")
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise RequestError("'stop' must be a string or a list of strings")

        choices = []
        n_prompt = n_completion = 0
        for i, (ids, text) in enumerate(prompts):
            c = self.complete_one(ids, text, max_tokens=max_tokens, echo=echo, logprobs=logprobs, stop=stop)
            n_prompt += c.pop("_prompt_tokens")
            n_completion += c.pop("_completion_tokens")
            choices.append({"index": i, **c})
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n_completion,
                "total_tokens": n_prompt + n_completion,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    server_version = "TinyOpenAI/0.1"
    # HTTP/1.0: one request per connection, so shutdown never waits on idle keep-alives.
    protocol_version = "HTTP/1.0"

    @property
    def engine(self) -> _Engine:
        return self.server.engine  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, typ: str = "invalid_request_error") -> None:
        self._send_json(status, {"error": {"message": message, "type": typ, "param": None, "code": None}})

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self._path()
        if path in ("/v1/models", "/models"):
            self._send_json(
                200,
                {"object": "list", "data": [{"id": self.engine.model_name, "object": "model", "owned_by": "local"}]},
            )
        elif path == "/health":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_error(404, f"no route GET {path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        path = self._path()
        length_hdr = self.headers.get("Content-Length")
        if length_hdr is None:
            self._send_error(411, "Content-Length required")
            return
        try:
            length = int(length_hdr)
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError
        except ValueError:
            self._send_error(400, "invalid Content-Length")
            return
        raw = self.rfile.read(length)
        if path not in ("/v1/completions", "/completions"):
            self._send_error(404, f"no route POST {path}", "not_found")
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._send_error(400, f"malformed JSON: {e}")
            return
        try:
            reply = self.engine.completions(body)
        except RequestError as e:
            self._send_error(400, str(e))
            return
        except Exception as e:  # noqa: BLE001 - report to the client, keep serving
            log.error("completion failed:\n%s", traceback.format_exc())
            self._send_error(500, f"{type(e).__name__}: {e}", "server_error")
            return
        self._send_json(200, reply)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], engine: _Engine):
        self.engine = engine
        super().__init__(addr, _Handler)


class CompletionsServer:
    """OpenAI-compatible completions server for ``model_dir``, on 127.0.0.1.

    ``port=0`` (the default) picks a free ephemeral port.  Use as a context
    manager (or call ``start()`` / ``stop()``)::

        with CompletionsServer(model_dir) as srv:
            srv.base_url  # "http://127.0.0.1:<port>/v1/completions"
    """

    host = "127.0.0.1"

    def __init__(self, model_dir: str | Path, port: int = 0, *, device: str = "cpu", model_name: str | None = None):
        self.model_dir = str(model_dir)
        self._port = port
        self._device = device
        self._model_name = model_name
        self.engine: _Engine | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------

    def _bind(self) -> _HTTPServer:
        if self.engine is None:
            self.engine = _Engine(self.model_dir, device=self._device, model_name=self._model_name)
        self._httpd = _HTTPServer((self.host, self._port), self.engine)
        return self._httpd

    def start(self) -> CompletionsServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"openai-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=10)
            self._httpd.server_close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> CompletionsServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The completions endpoint, as lm-eval's ``base_url`` model arg wants it."""
        return f"{self.root_url}/v1/completions"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Serve a local transformers causal LM as an OpenAI /v1/completions API on 127.0.0.1.")
    p.add_argument("model_dir", help="folder with a transformers causal LM and its tokenizer")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port; default 8000)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    srv = CompletionsServer(args.model_dir, port=args.port, device=args.device)
    httpd = srv._bind()
    print(f"serving {args.model_dir} at http://{srv.host}:{httpd.server_address[1]}/v1/completions", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
