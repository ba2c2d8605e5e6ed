"""The judges: an OpenAI-compatible chat endpoint, or a local transformers model.

Both see the same two chat messages (:func:`judge_messages`): our own
wording of the pairwise style of AlpacaEval (Li et al. 2023; Dubois et al.
2024): an instruction, two outputs labelled A and B, and a request for one
word. A judge's ``ask(messages)`` returns the raw reply text; parsing it is
:func:`lm_eval_rankacc.core.verdicts.parse_verdict`. Its
``answer_probs(messages)`` returns the probabilities of the answer words
(``--judge-verdict logprob``; the strings counted:
:data:`lm_eval_rankacc.core.verdicts.ANSWER_FORMS`).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from lm_eval_rankacc.core.errors import UsageError
from lm_eval_rankacc.core.verdicts import ANSWER_FORMS, answer_label
from lm_eval_rankacc.judging.http import JudgeError, Refused, RequestRejected, post_json, redact, split_credentials

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
#: Log-probabilities an API judge is asked for at the answer position (OpenAI's maximum).
TOP_LOGPROBS = 20
__all__ = ["JudgeError", "RequestRejected", "ChatJudge", "LocalJudge", "ask_with_retries", "check_judge_options",
           "judge_messages", "redact"]


def check_judge_options(timeout: float = 60.0, workers: int = 4, retries: int = 3, max_tokens: int = 16) -> None:
    """A :class:`UsageError` naming the first option out of range: ``--timeout``
    a finite number > 0, ``--workers`` and ``--judge-max-tokens`` integers
    >= 1, ``--retries`` an integer >= 0."""
    def whole(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise UsageError(f"--timeout must be a number of seconds > 0, got {timeout!r}")
    for option, value, low in (("--workers", workers, 1), ("--retries", retries, 0),
                               ("--judge-max-tokens", max_tokens, 1)):
        if not whole(value) or value < low:
            raise UsageError(f"{option} must be an integer >= {low}, got {value!r}")


def judge_messages(prompt: str, output_a: str, output_b: str) -> list[dict[str, str]]:
    """The chat messages a judge answers: system instructions, then the request and both answers."""
    user = USER_TEMPLATE.format(prompt=prompt.strip(), output_a=output_a.strip(), output_b=output_b.strip())
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class ChatJudge:
    """POST ``{url}/chat/completions`` (OpenAI's chat API) with temperature 0,
    through one ``httpx`` client (connections reused; :func:`post_json`
    bounds each call). The API key goes only into the ``Authorization``
    header; it, and credentials inside ``url``, are redacted from every reply
    kept and every error line."""

    deterministic = False  # a retry may get another reply

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 max_tokens: int = 16, workers: int = 4):
        import httpx

        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--judge-url {redact(url, split_credentials(url)[2])}: not an http(s) URL")
        clean, auth, secrets = split_credentials(url)
        self.url = clean.rstrip("/")
        self.model, self.timeout, self.max_tokens = model, timeout, max_tokens
        self._key = api_key or None
        self._secrets = [s for s in [self._key, *secrets] if s]
        self._client = httpx.Client(auth=auth, follow_redirects=False, trust_env=False,
                                    limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers))
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.url} {self.model}"

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        where = f"{self.url}/chat/completions"
        try:
            return post_json(self._client, where, body, headers, timeout=self.timeout, secrets=self._secrets,
                             where=where)
        except Refused as err:
            raise UsageError(f"the judge refused the request: {err}") from None

    def ask(self, messages: list[dict[str, str]]) -> str:
        """The reply's text (redacted); :class:`JudgeError` for a failure worth
        a retry, :class:`UsageError` for one the user must fix (bad key, model, URL)."""
        data = self._post({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens})
        return redact(_reply_text(data, self._secrets), self._secrets)

    def answer_probs(self, messages: list[dict[str, str]]) -> dict[str, float]:
        """The probabilities of the answer words at the reply's first token,
        from the API's ``top_logprobs``: the tokens that are one of the
        word's :data:`~lm_eval_rankacc.core.verdicts.ANSWER_FORMS`
        (:func:`~lm_eval_rankacc.core.verdicts.answer_label`), summed; a word
        none of whose forms is among them gets 0."""
        data = self._post({"model": self.model, "messages": messages, "temperature": 0, "max_tokens": 1,
                           "logprobs": True, "top_logprobs": TOP_LOGPROBS})
        try:
            top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
        except (KeyError, IndexError, TypeError, ValueError):
            raise JudgeError(redact(f"reply without choices[0].logprobs.content[0].top_logprobs: "
                                    f"{json.dumps(data)[:200]}", self._secrets)) from None
        probs = {label: 0.0 for label in ANSWER_FORMS}
        for token, logprob in pairs:
            label = answer_label(token)
            if label is not None and math.isfinite(logprob):
                probs[label] += math.exp(logprob)
        return probs


def _reply_text(data: Any, secrets: list[str]) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeError(redact(f"reply without choices[0].message.content: {json.dumps(data)[:200]}",
                                secrets)) from None
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

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        """The text the model continues: its chat template with the generation prompt, or the plain join."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\nVerdict:"

    def _ids(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False, return_tensors="pt")
        return {k: v.to(self.device) for k, v in ids.items()}

    def ask(self, messages: list[dict[str, str]]) -> str:
        ids = self._ids(messages)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self._torch.inference_mode():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    def answer_sequences(self) -> dict[str, list[tuple[int, ...]]]:
        """Per answer word, the token ids of each of its
        :data:`~lm_eval_rankacc.core.verdicts.ANSWER_FORMS` as the tokenizer
        encodes that string alone (no special tokens), duplicates dropped."""
        out: dict[str, list[tuple[int, ...]]] = {}
        for label, forms in ANSWER_FORMS.items():
            seqs = [tuple(self.tokenizer(form, add_special_tokens=False)["input_ids"]) for form in forms]
            out[label] = list(dict.fromkeys(s for s in seqs if s))
        return out

    def answer_probs(self, messages: list[dict[str, str]]) -> dict[str, float]:
        """Per answer word, the summed probability of its forms' token
        sequences (:meth:`answer_sequences`) continuing the prompt (the
        product of their tokens' next-token probabilities, softmax in
        float64): the prompt run once, the longer forms on its key/value cache
        (:func:`lm_eval_rankacc.lmeval.models.prefix_cache.score_cached`)."""
        from lm_eval_rankacc.lmeval.models.prefix_cache import score_cached

        context = self._ids(messages)["input_ids"][0].tolist()
        seqs = self.answer_sequences()
        flat = [list(seq) for label in seqs for seq in seqs[label]]
        with self._torch.inference_mode():
            scores = iter(score_cached(self.model, context, flat, self.device, softmax_dtype=self._torch.float64,
                                       keeps_logits=False))
        return {label: sum(math.exp(next(scores)[0]) for _ in seqs[label]) for label in seqs}


def ask_with_retries(judge: Any, ask, parse, retries: int,
                     wait: float = 1.0) -> tuple[str, Any, int, str | None]:
    """(verdict, raw reply, attempts, last error) of one judge call
    (``ask()``, its reply read by ``parse``): asked again on a
    :class:`JudgeError` or an unparsable reply, at most ``retries`` more
    times (not again for a deterministic judge's reply, nor after a
    :class:`RequestRejected`), waiting ``wait * 2**k`` seconds (at most 30)
    before retry k, or the server's ``Retry-After`` when longer; then ``unparsed``."""
    raw, error = "", None
    for attempt in range(1, retries + 2):
        pause = None
        try:
            raw, error = ask(), None
        except JudgeError as err:
            raw, error, pause = "", str(err), err.retry_after
            if isinstance(err, RequestRejected):
                return "unparsed", raw, attempt, error
        verdict = parse(raw)
        if error is None and (verdict != "unparsed" or judge.deterministic):
            return verdict, raw, attempt, error
        if attempt <= retries:
            time.sleep(max(min(30.0, wait * 2 ** (attempt - 1)), pause or 0.0))
    return "unparsed", raw, retries + 1, error
