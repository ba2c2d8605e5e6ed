"""What rankacc adds to lm-eval's loglikelihood requests: token counts and the
model's window, decided once per document.

:func:`install_token_counts` wraps ``TemplateLM.loglikelihood`` (the method of
every tokenizing backend: hf, hf-prefix, vllm, local-completions). For the
requests of a rankacc document it tokenizes each (prompt, response) pair once,
as the backend itself does (``_encode_pair``), and applies the window rule of
:func:`fit_window` to the document as a whole:

- a response longer than the model's window (``max_length`` tokens) cannot be
  scored at all: the document is dropped, none of its requests reaches the
  model, and the ``too_long`` metric counts it;
- when a prompt plus the longest response exceed the window, the prompt is cut
  from the left by the same number of tokens for every response of the
  document (lm-eval alone would cut each request by a different amount), and
  the ``truncated`` metric counts it.

Each result is a :class:`Loglikelihood`: lm-eval's ``(loglikelihood,
is_greedy)`` plus ``n_tokens`` (the continuation tokens scored, the unit of
R~, Eq. 15), ``prompt_tokens_cut`` and ``too_long``. Other tasks' requests are
untouched. Installed by the start-up hook and by the tasks' loader, never on
import.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("lm-eval")


class Loglikelihood(tuple):
    """lm-eval's ``(loglikelihood, is_greedy)`` result for one request, plus what
    rankacc records about it: ``n_tokens`` (continuation tokens scored; None
    when the backend cannot say), ``prompt_tokens_cut`` (tokens cut from the
    left of the prompt to fit the window) and ``too_long`` (the document was
    dropped: a response does not fit the window; the log-likelihood is NaN)."""

    n_tokens: int | None = None
    prompt_tokens_cut: int = 0
    too_long: bool = False

    def __new__(cls, result, n_tokens: int | None, prompt_tokens_cut: int = 0, too_long: bool = False):
        obj = super().__new__(cls, result)
        obj.n_tokens, obj.prompt_tokens_cut, obj.too_long = n_tokens, prompt_tokens_cut, too_long
        return obj

    def __reduce__(self):  # keeps the fields through lm-eval's request cache
        return (Loglikelihood, (tuple(self), self.n_tokens, self.prompt_tokens_cut, self.too_long))


def fit_window(context_tokens: int, continuation_tokens: Sequence[int], window: int | None) -> tuple[int, bool]:
    """(prompt tokens to cut, too long?) for one document whose responses share
    a prompt of ``context_tokens`` tokens, in a causal model reading at most
    ``window`` tokens (the last continuation token is predicted, not read).

    Too long: a response has more than ``window`` tokens, so no prompt at all
    would fit. Otherwise the prompt loses from its left the tokens by which
    prompt + the longest response overflow ``window + 1``: the same cut for
    every response, so all of them are scored against the same prompt.
    """
    if window is None or not continuation_tokens:
        return 0, False
    longest = max(continuation_tokens)
    if longest > window:
        return 0, True
    return max(0, context_tokens + longest - (window + 1)), False


def _is_rankacc_doc(doc: Any) -> bool:
    return isinstance(doc, dict) and {"id", "prompt", "responses", "ranks"} <= doc.keys()


#: Tokens of prompt + response each backend reads at most, beyond its
#: ``max_length`` attribute: lm-eval's hf backend keeps ``max_length + 1``
#: (the last continuation token is predicted, not read); its API backends keep
#: ``max_length`` (the attribute is already one less than the option); vLLM
#: keeps ``max_length - 1``. Backends not named here are taken at the smallest.
_CAPACITY_OVER_MAX_LENGTH = {"HFLM": 1, "TemplateAPI": 0, "VLLM": -1}


def _window(lm: Any) -> int | None:
    """The window of :func:`fit_window` for this backend: its capacity (prompt +
    response tokens it scores without cutting) minus one. None (no rule) for
    backends whose window is unknown or that are not causal."""
    max_length = getattr(lm, "max_length", None)
    if getattr(lm, "backend", "causal") != "causal" or isinstance(max_length, bool) or not isinstance(max_length, int):
        return None
    names = [cls.__name__ for cls in type(lm).__mro__]
    over = next((_CAPACITY_OVER_MAX_LENGTH[n] for n in names if n in _CAPACITY_OVER_MAX_LENGTH), -1)
    return max_length + over - 1


def _report(task: str, dropped: int, cut: list[int], window: int | None) -> None:
    if dropped:
        log.warning(
            "%s: %d document(s) have a response longer than the model's window (max_length %s tokens): "
            "dropped, not scored, counted in the 'too_long' metric", task, dropped, window,
        )
    if cut:
        log.warning(
            "%s: %d document(s) longer than the model's window (max_length %s tokens): the prompt is cut from "
            "the left by the same number of tokens for every response of the document (at most %d), counted "
            "in the 'truncated' metric", task, len(cut), window, max(cut),
        )


def _encode(lm: Any, requests: list, disable_tqdm: bool) -> list[tuple[list[int], list[int]]]:
    """(context tokens, continuation tokens) of each request, the backend's own split."""
    from tqdm import tqdm

    return [lm._encode_pair(*request.args)
            for request in tqdm(requests, desc="Tokenizing inputs (rankacc)", disable=disable_tqdm)]


def _score_documents(lm: Any, requests: list, encoded: list, disable_tqdm: bool) -> list[Loglikelihood]:
    """Results of rankacc requests (non-empty prompts, ``encoded``): the window
    rule applied per document, the rest scored by the backend in one call."""
    window = _window(lm)
    by_doc: dict[tuple, list[int]] = defaultdict(list)
    for k, request in enumerate(requests):
        by_doc[(getattr(request, "task_name", None), getattr(request, "doc_id", None), id(request.doc))].append(k)
    plan: dict[int, tuple[int, bool]] = {}
    per_task: dict[Any, list] = defaultdict(lambda: [0, []])
    for (task, _, _), members in by_doc.items():
        cut, too_long = fit_window(len(encoded[members[0]][0]), [len(encoded[k][1]) for k in members], window)
        plan.update({k: (cut, too_long) for k in members})
        per_task[task][0] += too_long
        if cut:
            per_task[task][1].append(cut)
    for task, (dropped, cuts) in per_task.items():
        _report(task or "rankacc", dropped, cuts, window)
    scored_k = [k for k in range(len(requests)) if not plan[k][1]]
    new_reqs = [(requests[k].args, encoded[k][0][plan[k][0]:], encoded[k][1]) for k in scored_k]
    scored = dict(zip(scored_k, lm._loglikelihood_tokens(new_reqs, disable_tqdm=disable_tqdm) if new_reqs else []))
    return [
        Loglikelihood((math.nan, False), len(encoded[k][1]), 0, True) if plan[k][1]
        else Loglikelihood(scored[k], len(encoded[k][1]), plan[k][0])
        for k in range(len(requests))
    ]


def install_token_counts() -> bool:
    """Make lm-eval's tokenizing backends (every ``TemplateLM``) score rankacc
    requests as the module docstring says. Idempotent; returns False (and
    changes nothing) if lm-eval's internals are not as expected."""
    try:
        from lm_eval.api.model import TemplateLM
    except ImportError:
        return False
    original = TemplateLM.__dict__.get("loglikelihood")
    if original is None or not hasattr(TemplateLM, "_encode_pair") or not hasattr(TemplateLM, "_loglikelihood_tokens"):
        log.warning("lm_eval_rankacc: lm-eval's TemplateLM changed; rank_acc_norm will be left out")
        return False
    if getattr(original, "_rankacc_wrapped", False):
        return True

    def loglikelihood(self, requests, disable_tqdm: bool = False, *args, **kwargs):
        ours = [k for k, r in enumerate(requests) if _is_rankacc_doc(getattr(r, "doc", None)) and r.args[0]]
        if not ours:
            return original(self, requests, disable_tqdm, *args, **kwargs)
        others = sorted(set(range(len(requests))) - set(ours))
        results: list[Any] = [None] * len(requests)
        if others:
            for k, result in zip(others, original(self, [requests[k] for k in others], disable_tqdm, *args, **kwargs)):
                results[k] = result
        mine = [requests[k] for k in ours]
        try:
            encoded = _encode(self, mine, disable_tqdm)
        except Exception:  # a backend whose tokenizer cannot split: counts unknown, lm-eval's own path
            answers = [Loglikelihood(result, None) for result in original(self, mine, disable_tqdm, *args, **kwargs)]
        else:
            answers = _score_documents(self, mine, encoded, disable_tqdm)
        for k, answer in zip(ours, answers):
            results[k] = answer
        return results

    loglikelihood._rankacc_wrapped = True  # type: ignore[attr-defined]
    loglikelihood.__wrapped__ = original  # type: ignore[attr-defined]
    loglikelihood.__doc__ = original.__doc__
    TemplateLM.loglikelihood = loglikelihood
    return True
