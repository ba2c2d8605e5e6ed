"""The judges: an OpenAI-compatible chat endpoint, or a local transformers model.

Both see the same two chat messages (:func:`judge_messages`): our own
wording of the pairwise style of AlpacaEval (Li et al. 2023; Dubois et al.
2024): an instruction, two outputs labelled A and B, and a request for one
word. A judge's ``ask(messages)`` returns the raw reply text; parsing it is
:func:`lm_eval_rankacc.core.verdicts.parse_verdict`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from lm_eval_rankacc.core.errors import UsageError

SYSTEM_PROMPT = (
    "You compare two answers that AI assistants wrote for the same user request. Decide which answer serves "
    "the user better: it follows the request, is correct, helpful and harmless. The order in which the answers "
    "are shown says nothing about their quality, and a longer answer is not better for being longer."
)
USER_TEMPLATE = (
    "# User request\n\n{prompt}\n\n"
    "# Answer A\n\n{output_a}\n\n"
    "# Answer B\n\n{output_b}\n\n"
    "# Your verdict\n\n"
    "Which answer is better? Reply with one word and nothing else: A, B, or tie."
)
#: HTTP statuses worth asking again (rate limits, timeouts, server errors); other 4xx are the user's to fix.
RETRY_STATUSES = {408, 409, 425, 429}


class JudgeError(Exception):
    """A judge call that failed in a way worth retrying (HTTP 5xx/429, timeout, connection)."""


class RequestRejected(JudgeError):
    """HTTP 400 for this one request (e.g. too long for the judge): not asked again, counted unparsed."""


def judge_messages(prompt: str, output_a: str, output_b: str) -> list[dict[str, str]]:
    """The chat messages a judge answers: system instructions, then the request and both answers."""
    user = USER_TEMPLATE.format(prompt=prompt.strip(), output_a=output_a.strip(), output_b=output_b.strip())
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


class ChatJudge:
    """POST ``{url}/chat/completions`` (OpenAI's chat API) with temperature 0.
    The API key goes only into the ``Authorization`` header; it is redacted
    from every error message and never stored elsewhere."""

    deterministic = False  # a retry may get another reply

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 max_tokens: int = 16):
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--judge-url {url}: not an http(s) URL")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._key = api_key or None
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.url} {self.model}"

    def _request(self, messages: list[dict[str, str]]) -> urllib.request.Request:
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return urllib.request.Request(f"{self.url}/chat/completions", data=json.dumps(body).encode("utf-8"),
                                      headers=headers, method="POST")

    def ask(self, messages: list[dict[str, str]]) -> str:
        """The reply's text; :class:`JudgeError` for a failure worth a retry,
        :class:`UsageError` for one the user must fix (bad key, model, URL)."""
        try:
            with urllib.request.urlopen(self._request(messages), timeout=self.timeout) as resp:
                data = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = redact(err.read().decode("utf-8", "replace")[:300], self._key)
            message = f"{self.url}/chat/completions: HTTP {err.code}: {detail}"
            if err.code >= 500 or err.code in RETRY_STATUSES:
                raise JudgeError(message) from None
            if err.code == 400:
                raise RequestRejected(message) from None
            raise UsageError(f"the judge refused the request: {message}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            raise JudgeError(redact(f"{self.url}/chat/completions: {err}", self._key)) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise JudgeError(f"{self.url}/chat/completions: reply is not JSON ({err})") from None
        return _reply_text(data)


def _reply_text(data: Any) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeError(f"reply without choices[0].message.content: {json.dumps(data)[:200]}") from None
    return content if isinstance(content, str) else ""


class LocalJudge:
    """A local transformers causal LM, greedy; the messages go through its chat
    template when it has one, else are joined as plain text."""

    deterministic = True  # greedy: asking again gives the same reply

    def __init__(self, model_dir: str, device: str | None = None, max_new_tokens: int = 16):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = str(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            dtype = torch.float32 if self.device == "cpu" else "auto"  # bfloat16 is slow on CPUs
            self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise UsageError(f"--judge-local {self.path}: not a transformers causal LM ({err})") from None
        self.max_new_tokens = max_new_tokens
        self._torch = torch

    @property
    def name(self) -> str:
        return self.path

    def _text(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\nVerdict:"

    def ask(self, messages: list[dict[str, str]]) -> str:
        ids = self.tokenizer(self._text(messages), add_special_tokens=False, return_tensors="pt")
        ids = {k: v.to(self.device) for k, v in ids.items()}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self._torch.inference_mode():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def ask_with_retries(judge: Any, messages: list[dict[str, str]], parse, retries: int,
                     wait: float = 1.0) -> tuple[str, str, int, str | None]:
    """(verdict, raw reply, attempts, last error) of one judge call: asked
    again on a :class:`JudgeError` or an unparsable reply, at most ``retries``
    more times (not again for a deterministic judge's reply, nor after a
    :class:`RequestRejected`), waiting
    ``wait * 2**k`` seconds (at most 30) before retry k; then ``unparsed``."""
    raw, error = "", None
    for attempt in range(1, retries + 2):
        try:
            raw, error = judge.ask(messages), None
        except JudgeError as err:
            raw, error = "", str(err)
            if isinstance(err, RequestRejected):
                return "unparsed", raw, attempt, error
        verdict = parse(raw)
        if error is None and (verdict != "unparsed" or judge.deterministic):
            return verdict, raw, attempt, error
        if attempt <= retries:
            time.sleep(min(30.0, wait * 2 ** (attempt - 1)))
    return "unparsed", raw, retries + 1, error
