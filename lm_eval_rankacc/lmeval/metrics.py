"""Per-document ranking-accuracy metrics for lm-eval (``process_results``).

Each response is scored by lm-eval as log p(" " + response | prompt). From
those scores, per document:

- ``rank_acc``       R  (Def. 2.3): summed log-probability; ties (Def. C.1)
  compared on the summed log-probability.
- ``rank_acc_norm``  R~ (Eq. 15): mean log-probability per token, token counts
  from the backend's own tokenizer split; ties compared on the geometric-mean
  token probability exp(mean). Left out (with one notice) when the backend
  reports no token counts.
- ``rank_acc_bytes``: mean log-probability per UTF-8 byte of the scored
  continuation; ties compared on exp(mean). Tokenizer-free.
- ``pair_acc`` / ``pair_acc_norm`` (documents with n > 2 responses): share of
  human-strictly-ordered pairs the model orders correctly.
- ``invalid``: number of NaN / infinite log-likelihoods (summed over the task).
- ``too_long``: 1 for a document dropped because a response does not fit the
  model's window (:func:`lm_eval_rankacc.lmeval.loglikelihood.fit_window`); such a
  document has no ranking metric, so it is left out of every mean. Summed.
- ``truncated``: the tokens cut from the left of the document's prompt so that
  its responses fit the window (the same cut for every response; 0 = none).
  The aggregate is the number of documents cut.
- ``scores``: the raw per-response values (``loglik``, ``n_tokens``,
  ``n_bytes``), kept in ``--log_samples`` output for later analysis; its
  aggregate is the number of responses scored. A dropped document's
  log-likelihoods are null. ``n_bytes`` counts the text the backend scored
  (:func:`scored_text`): by default the prompt's trailing whitespace and
  " " + response; under ``--apply_chat_template``
  (:mod:`lm_eval_rankacc.lmeval.chat`) the template's trailing whitespace, the
  response and, if the task says so, the end-of-turn marker.

All metrics are pure functions of one document, so data-parallel runs that
shard documents and gather per-document values give the same aggregates.

The generation variants (``rankgen_*``, one ``generate_until`` request per
document) describe each generation instead: :func:`generation_results`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lm_eval_rankacc.lmeval.dataset import doc_to_target
from lm_eval_rankacc.loading.documents import JOIN
from lm_eval_rankacc.core.theory import METRIC_UNITS, TIE_EPS, is_valid, metric_scores, pair_accuracy, ranking_correct

log = logging.getLogger("lm-eval")
#: Pair accuracy (documents of n > 2 responses) beside these ranking metrics.
PAIR_METRICS = {"rank_acc": "pair_acc", "rank_acc_norm": "pair_acc_norm"}
_notified: set[str] = set()


def _notify_once(key: str, message: str) -> None:
    if key not in _notified:
        _notified.add(key)
        log.warning(message)


def scored_text(context: str, continuation: str) -> str:
    """The text a tokenizing lm-eval backend scores for the request (context,
    continuation): it moves the context's trailing whitespace to the front of
    the continuation before it splits the tokens."""
    return context[len(context.rstrip()):] + continuation


def default_requests(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The (context, continuation) of each response without a chat template:
    (prompt, " " + response)."""
    return [(doc["prompt"], JOIN + resp) for resp in doc["responses"]]


def document_scores(
    doc: dict[str, Any], results: list[Any], requests: list[tuple[str, str]] | None = None
) -> dict[str, list]:
    """The raw per-response values of one document: summed log-likelihood (None
    for a dropped document), scored continuation tokens (None when unknown) and
    UTF-8 bytes of the text scored; ``requests``: the (context, continuation)
    of each response, :func:`default_requests` when None."""
    if len(results) != len(doc["responses"]):
        raise ValueError(
            f"document {doc['id']}: {len(results)} results for {len(doc['responses'])} responses"
        )
    dropped = any(getattr(r, "too_long", False) for r in results)
    pairs = default_requests(doc) if requests is None else requests
    return {
        "loglik": [None if dropped else float(r[0]) for r in results],
        "n_tokens": [getattr(r, "n_tokens", None) for r in results],
        "n_bytes": [len(scored_text(*pair).encode("utf-8")) for pair in pairs],
    }


def ranking_metrics(
    ranks: list[int],
    loglik: list[float],
    n_tokens: list[int | None],
    n_bytes: list[int],
    eps: float = TIE_EPS,
) -> dict[str, float]:
    """All ranking metrics of one document from its raw scores: each metric of
    :data:`~lm_eval_rankacc.core.theory.METRIC_UNITS` compares the scores
    :func:`~lm_eval_rankacc.core.theory.metric_scores` gives it; ``rank_acc_norm``
    is left out without token counts; ``pair_acc``/``pair_acc_norm`` for n > 2."""
    units = {"n_tokens": n_tokens, "n_bytes": n_bytes}
    out: dict[str, float] = {}
    for metric, unit in METRIC_UNITS.items():
        if unit is not None and any(n is None for n in units[unit]):
            continue
        scores, tie_scores = metric_scores(loglik, None if unit is None else np.asarray(units[unit], dtype=float))
        out[metric] = float(ranking_correct(scores, ranks, tie_scores, eps))
        if len(ranks) > 2 and metric in PAIR_METRICS:
            pa = pair_accuracy(scores, ranks)
            if pa is not None:
                out[PAIR_METRICS[metric]] = pa
    return out


def process_results(
    doc: dict[str, Any], results: list[Any], requests: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """lm-eval ``process_results`` for every rankacc task; ``requests`` as for
    :func:`document_scores` (the chat task class passes its own)."""
    scores = document_scores(doc, results, requests)
    too_long = any(v is None for v in scores["loglik"])
    metrics = {} if too_long else ranking_metrics(
        list(doc["ranks"]), scores["loglik"], scores["n_tokens"], scores["n_bytes"])
    if "rank_acc_norm" not in metrics and not too_long:
        _notify_once(
            "norm",
            "rankacc: this backend reports no token counts, so rank_acc_norm (R~) is left out; "
            "rank_acc and rank_acc_bytes are unaffected",
        )
    invalid = sum(x is not None and not is_valid(x) for x in scores["loglik"])
    if invalid:
        _notify_once(
            "invalid",
            "rankacc: the model returned NaN or infinite log-likelihoods; such documents count as "
            "wrong, and the 'invalid' metric counts the responses affected",
        )
    metrics["invalid"] = invalid
    metrics["too_long"] = int(too_long)
    metrics["truncated"] = max(int(getattr(r, "prompt_tokens_cut", 0) or 0) for r in results)
    metrics["scores"] = scores
    return metrics


def total(items: list[int]) -> int:
    """Aggregation of ``invalid``: the sum over documents (lm-eval has no "sum")."""
    return int(sum(items))


def count_positive(items: list[int]) -> int:
    """Aggregation of ``truncated``: the number of documents with a value above 0."""
    return sum(1 for item in items if item)


def count_responses(items: list[dict[str, list]]) -> int:
    """Aggregation of ``scores``: the number of responses scored (a dropped
    document's responses are not)."""
    return sum(sum(ll is not None for ll in item["loglik"]) for item in items)


# ----------------------------------------------------------------- generation variants
def best_response(doc: dict[str, Any]) -> str:
    """``doc_to_target`` of the generation variants: a best-ranked human
    response (logged as the sample's target; no metric compares with it)."""
    return doc["responses"][doc_to_target(doc)]


def generation_results(doc: dict[str, Any], results: list[str]) -> dict[str, int]:
    """lm-eval ``process_results`` of the generation variants (docs/section5.md):
    the length of the one generation, after lm-eval cut it at a stop sequence
    and with surrounding whitespace left out, in characters and in
    whitespace-separated words (tokenizer-free, so every backend gives the
    same numbers), and whether it is empty. Win rates come from
    ``rankacc winrate``, not from here."""
    if len(results) != 1:
        raise ValueError(f"document {doc['id']}: {len(results)} generations, expected 1")
    text = results[0].strip()
    return {"gen_chars": len(text), "gen_words": len(text.split()), "gen_empty": int(not text)}
