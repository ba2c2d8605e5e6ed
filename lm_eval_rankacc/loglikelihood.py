"""What rankacc adds to lm-eval's loglikelihood requests: the number of
continuation tokens each backend scored (the unit of R~, Eq. 15).

:func:`install_token_counts` wraps ``TemplateLM.loglikelihood`` so that every
tokenizing backend (hf, vllm, local-completions, any ``TemplateLM``) returns,
for a request of a rankacc document, a :class:`Loglikelihood`: lm-eval's
``(loglikelihood, is_greedy)`` plus ``n_tokens``. Other tasks' requests are
untouched. Called by the start-up hook and by the tasks' loader, never on import.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("lm-eval")


class Loglikelihood(tuple):
    """lm-eval's ``(loglikelihood, is_greedy)`` result for one request, plus
    ``n_tokens``: the number of continuation tokens the backend scored."""

    n_tokens: int | None = None

    def __new__(cls, result, n_tokens: int | None):
        obj = super().__new__(cls, result)
        obj.n_tokens = n_tokens
        return obj

    def __reduce__(self):  # keeps n_tokens through lm-eval's request cache
        return (Loglikelihood, (tuple(self), self.n_tokens))


def _is_rankacc_doc(doc: Any) -> bool:
    return isinstance(doc, dict) and {"id", "prompt", "responses", "ranks"} <= doc.keys()


def _continuation_tokens(lm: Any, context: str, continuation: str) -> int | None:
    """Continuation length under the backend's own context/continuation split
    (``TemplateLM._encode_pair``), which is what its loglikelihood scored."""
    if not context:
        return None
    return len(lm._encode_pair(context, continuation)[1])


def install_token_counts() -> bool:
    """Make lm-eval's tokenizing backends (hf, vllm, local-completions, every
    ``TemplateLM``) report the continuation token count of each rankacc
    request. Other tasks' requests are returned untouched. Idempotent; returns
    False (and changes nothing) if lm-eval's internals are not as expected."""
    try:
        from lm_eval.api.model import TemplateLM
    except ImportError:
        return False
    original = TemplateLM.__dict__.get("loglikelihood")
    if original is None or not hasattr(TemplateLM, "_encode_pair"):
        log.warning("lm_eval_rankacc: lm-eval's TemplateLM changed; rank_acc_norm will be left out")
        return False
    if getattr(original, "_rankacc_wrapped", False):
        return True

    def loglikelihood(self, requests, *args, **kwargs):
        results = original(self, requests, *args, **kwargs)
        out = []
        for request, result in zip(requests, results, strict=True):
            if _is_rankacc_doc(getattr(request, "doc", None)):
                try:
                    n = _continuation_tokens(self, *request.args)
                except Exception:  # a backend whose tokenizer cannot split: count unknown
                    n = None
                result = Loglikelihood(result, n)
            out.append(result)
        return out

    loglikelihood._rankacc_wrapped = True  # type: ignore[attr-defined]
    loglikelihood.__wrapped__ = original  # type: ignore[attr-defined]
    loglikelihood.__doc__ = original.__doc__
    TemplateLM.loglikelihood = loglikelihood
    return True
