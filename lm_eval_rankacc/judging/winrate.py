"""``rankacc winrate``: judge a policy run's generations against a baseline run's (docs/winrate.md)."""

from __future__ import annotations

import fnmatch
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lm_eval_rankacc.core.errors import RunError, UsageError
from lm_eval_rankacc.core.jsontext import strict_dumps
from lm_eval_rankacc.judging.generations import Generations, read_generations
from lm_eval_rankacc.judging.judges import (ChatJudge, LocalJudge, ask_with_retries, check_judge_options,
                                            judge_messages)
from lm_eval_rankacc.outputs.names import newest_samples
from lm_eval_rankacc.core.stats import LEVEL, N_BOOTSTRAP, check_bootstrap
from lm_eval_rankacc.core.verdicts import (A, B, LOGPROB_MARGIN, ORDERS, TIE, UNPARSED, answer_shares,
                                           combine_logprob, logprob_win_rate, mean_preference, parse_verdict,
                                           policy_preference, preferred, side, win_rate)
from lm_eval_rankacc.core.winrate_file import JUDGEMENTS_FILE, LEVEL_KEY, SUMMARY_FILE, summary_record


def _choose_task(policy: dict[str, Path], baseline: dict[str, Path], task: str | None) -> str:
    """The one task both runs hold (matching the glob ``task`` when given)."""
    common = sorted(t for t in set(policy) & set(baseline) if task is None or fnmatch.fnmatchcase(t, task))
    if len(common) != 1:
        what = "no task" if not common else f"{len(common)} tasks ({', '.join(common)})"
        raise RunError(f"{what} of both runs match {task or 'any name'} (policy: {', '.join(sorted(policy))}; "
                       f"baseline: {', '.join(sorted(baseline))}): pass --task")
    return common[0]


def _doc_order(doc_id: Any) -> tuple[bool, Any]:
    """Numbers in order, then names (lm-eval's doc_ids are ints)."""
    return isinstance(doc_id, str), doc_id if isinstance(doc_id, (int, float, str)) else str(doc_id)


def match_prompts(policy: Generations, baseline: Generations) -> tuple[list[Any], list[Any], list[Any]]:
    """(doc_ids in both runs, only in the policy's, only in the baseline's);
    a doc_id whose prompt differs between the runs is a :class:`RunError`
    (the runs did not generate for the same prompts)."""
    both = sorted((d for d in policy.items if d in baseline.items), key=_doc_order)
    differ = [d for d in both if policy.items[d][0] != baseline.items[d][0]]
    if differ:
        raise RunError(f"{policy.path} and {baseline.path}: {len(differ)} of {len(both)} doc_ids have different "
                       f"prompts (first: doc_id {differ[0]}): not generations for the same prompts (same task, "
                       "seed and sample size?)")
    if not both:
        raise RunError(f"{policy.path} and {baseline.path}: no doc_id in common")
    only_p = sorted((d for d in policy.items if d not in baseline.items), key=_doc_order)
    only_b = sorted((d for d in baseline.items if d not in policy.items), key=_doc_order)
    return both, only_p, only_b


def make_judge(judge_url: str | None = None, judge_model: str | None = None, judge_local: str | None = None,
               judge_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, device: str | None = None,
               max_tokens: int = 16, workers: int = 4):
    """A :class:`ChatJudge` (``judge_url`` + ``judge_model``; the key read from
    the environment variable ``judge_key_env``, absent: no key sent) or a
    :class:`LocalJudge` (``judge_local``)."""
    if bool(judge_url) == bool(judge_local):
        raise UsageError("name one judge: --judge-url URL --judge-model NAME, or --judge-local MODEL_DIR")
    if judge_local:
        return LocalJudge(judge_local, device=device, max_new_tokens=max_tokens)
    if not judge_model:
        raise UsageError("--judge-url needs --judge-model")
    judge = ChatJudge(judge_url, judge_model, os.environ.get(judge_key_env), timeout=timeout, max_tokens=max_tokens,
                      workers=workers)
    if not os.environ.get(judge_key_env):
        judge.notes.append(f"${judge_key_env} is not set: requests sent without an API key")
    return judge


def _calls(both: list[Any], policy: Generations, baseline: Generations) -> list[dict[str, Any]]:
    """One judge call per prompt and order: the policy's output as A, then as B."""
    calls = []
    for doc_id in both:
        prompt, mine = policy.items[doc_id]
        theirs = baseline.items[doc_id][1]
        for order in ORDERS:
            a, b = (mine, theirs) if order == "policy_a" else (theirs, mine)
            calls.append({"doc_id": doc_id, "order": order, "prompt": prompt, "output_a": a, "output_b": b})
    return calls


#: How ``rankacc winrate`` reads a judge: its reply's text, or its answer words' probabilities.
VERDICTS = ("text", "logprob")


def _logprob_parse(probs) -> str:  # noqa: ANN001 - a judge's answer_probs() reply
    """The most probable answer word, or ``unparsed`` without usable probabilities."""
    shares = answer_shares(probs)
    return UNPARSED if shares is None else max((A, B, TIE), key=lambda k: shares[k])


def _one_call(judge, call: dict[str, Any], verdict_mode: str, retries: int, wait: float) -> dict[str, Any]:
    messages = judge_messages(call["prompt"], call["output_a"], call["output_b"])
    if verdict_mode == "text":
        verdict, raw, attempts, error = ask_with_retries(judge, lambda: judge.ask(messages), parse_verdict,
                                                         retries, wait)
        return {**call, "verdict": verdict, "preferred": preferred(verdict, call["order"]), "raw": raw,
                "attempts": attempts, "error": error}
    verdict, raw, attempts, error = ask_with_retries(judge, lambda: judge.answer_probs(messages), _logprob_parse,
                                                     retries, wait)
    shares = answer_shares(raw) if error is None else None
    pref = policy_preference(shares, call["order"])
    return {**call, "verdict": verdict, "preferred": side(pref), "probs": raw or None, "shares": shares,
            "policy_preference": pref, "attempts": attempts, "error": error}


def judge_all(judge, calls: list[dict[str, Any]], retries: int = 3, workers: int = 1,
              retry_wait: float = 1.0, verdict: str = "text") -> list[dict[str, Any]]:
    """Ask the judge every call (``workers`` at a time for an API judge), with
    a progress bar; each call gets its verdict, raw reply (``text``) or
    answer-word probabilities (``logprob``), attempts and error."""
    from tqdm import tqdm

    refused = threading.Event()  # a refusal (bad key, model, URL) stops the calls not yet asked

    def one(call: dict[str, Any]) -> dict[str, Any]:
        if refused.is_set():
            raise UsageError("stopped after the judge refused a request")
        try:
            return _one_call(judge, call, verdict, retries, retry_wait)
        except UsageError:
            refused.set()
            raise

    workers = 1 if isinstance(judge, LocalJudge) else max(1, workers)
    pool = ThreadPoolExecutor(workers)
    out = []
    try:
        with tqdm(total=len(calls), desc="judging", unit="call") as bar:
            for result in pool.map(one, calls):
                out.append(result)
                bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _by_prompt(judged: list[dict[str, Any]], key: str) -> dict[Any, tuple[Any, Any]]:
    """doc_id -> (policy-as-A, policy-as-B) values of ``key`` in the judged calls."""
    by_doc: dict[Any, dict[str, Any]] = {}
    for j in judged:
        by_doc.setdefault(j["doc_id"], {})[j["order"]] = j[key]
    return {d: (v.get(ORDERS[0]), v.get(ORDERS[1])) for d, v in by_doc.items()}


def add_prompt_scores(judged: list[dict[str, Any]], margin: float = LOGPROB_MARGIN) -> None:
    """Give each log-probability judgement its prompt's combined preference
    (``mean_preference``: the mean over both orders) and ``score`` (1, 1/2,
    0, or None: unparsed), by :func:`~lm_eval_rankacc.core.verdicts.combine_logprob`."""
    pairs = _by_prompt(judged, "policy_preference")
    for j in judged:
        first, second = pairs[j["doc_id"]]
        j["mean_preference"] = mean_preference(first, second)
        j["score"] = combine_logprob(first, second, margin)


def _judged_win_rate(judged: list[dict[str, Any]], n_boot: int, seed: int, level: float,
                     verdict: str = "text"):  # noqa: ANN202
    """The :class:`~lm_eval_rankacc.core.verdicts.WinRate` of the judged calls, by prompt."""
    pairs = list(_by_prompt(judged, "preferred" if verdict == "text" else "policy_preference").values())
    if verdict == "text":
        return win_rate(pairs, n_boot, seed, level)
    return logprob_win_rate(pairs, LOGPROB_MARGIN, n_boot, seed, level)


def _level(level: float, confidence: float | None) -> float:
    """``level``, or the deprecated ``confidence`` (its name in release 0.1), with a DeprecationWarning."""
    if confidence is None:
        return level
    warnings.warn("winrate(confidence=...) is deprecated and will be removed in the next release: use level=...",
                  DeprecationWarning, stacklevel=3)
    if level != LEVEL and level != confidence:
        raise UsageError(f"give the interval's level once: level={level!r} and confidence={confidence!r}")
    return confidence


def _write(output: Path, judged: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        with (output / JUDGEMENTS_FILE).open("w", encoding="utf-8") as fh:
            for j in judged:
                fh.write(strict_dumps(j, ensure_ascii=False) + "\n")
        (output / SUMMARY_FILE).write_text(strict_dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise UsageError(f"--output {output}: cannot write ({err})") from None


def winrate(policy_run: str | Path, baseline_run: str | Path, *, judge=None, output: str | Path | None = None,
            task: str | None = None, filter_name: str | None = None, step: int | None = None,
            retries: int = 3, workers: int = 4, bootstrap: int = N_BOOTSTRAP, seed: int = 0,
            level: float = LEVEL, retry_wait: float = 1.0, confidence: float | None = None,
            verdict: str = "text", **judge_options: Any) -> dict[str, Any]:
    """Win rate of ``policy_run``'s generations over ``baseline_run``'s, judged
    pairwise in both orders (:mod:`lm_eval_rankacc.core.verdicts`). ``judge`` is a
    judge object, or built from ``judge_options`` (:func:`make_judge`);
    ``level`` is the bootstrap interval's (``confidence``, its 0.1 name, is
    deprecated); ``verdict`` how the judge is read (:data:`VERDICTS`: its
    text, or its answer words' probabilities). Writes ``judgements.jsonl`` and ``winrate.json`` into
    ``output`` when given; returns the summary (``winrate.json``'s content,
    :func:`lm_eval_rankacc.core.winrate_file.summary_record`)."""
    level = _level(level, confidence)
    try:
        check_bootstrap(bootstrap, level)
    except ValueError as err:
        raise UsageError(str(err)) from None
    check_judge_options(judge_options.get("timeout", 60.0), workers, retries, judge_options.get("max_tokens", 16))
    if verdict not in VERDICTS:
        raise UsageError(f"--judge-verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    notes: list[str] = []
    p_files, b_files = newest_samples(policy_run, notes), newest_samples(baseline_run, notes)
    name = _choose_task(p_files, b_files, task)
    pol = read_generations(p_files[name], name, filter_name)
    base = read_generations(b_files[name], name, filter_name)
    both, only_p, only_b = match_prompts(pol, base)
    judge = judge if judge is not None else make_judge(workers=workers, **judge_options)
    notes += getattr(judge, "notes", [])
    if output is None:
        notes.append("the judgements are not kept: pass --output DIR for judgements.jsonl")
    if verdict == "logprob":
        notes.append(f"log-probability verdicts: per order, the policy's preference is its label's share of "
                     f"p(A) + p(B) + p(tie) plus half the tie's; a win when the mean over both orders is above "
                     f"{0.5 + LOGPROB_MARGIN:g}, a loss below {0.5 - LOGPROB_MARGIN:g}, else a tie "
                     f"(margin {LOGPROB_MARGIN:g})")
    try:
        judged = judge_all(judge, _calls(both, pol, base), retries, workers, retry_wait, verdict)
    finally:
        getattr(judge, "close", lambda: None)()
    if verdict == "logprob":
        add_prompt_scores(judged, LOGPROB_MARGIN)
    if all(j["error"] for j in judged):  # e.g. a wrong URL or port: not a judge's verdicts at all
        raise UsageError(f"the judge never answered ({len(judged)} calls; last error: {judged[-1]['error']})")
    summary = summary_record(
        _judged_win_rate(judged, bootstrap, seed, level, verdict), level=level, bootstrap=bootstrap, seed=seed,
        judgements=judged, only_in_policy=only_p, only_in_baseline=only_b, judge=judge.name,
        policy=str(policy_run), baseline=str(baseline_run), policy_model=pol.model, baseline_model=base.model,
        task=name, step=step if step is not None else pol.step, retries=retries, notes=notes)
    summary.update(verdict=verdict, logprob_margin=LOGPROB_MARGIN if verdict == "logprob" else None)
    if output is not None:
        _write(Path(output), judged, summary)
    return summary


def markdown_table(summary: dict[str, Any]) -> str:
    """The summary as a short markdown table (one row)."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    ci = "" if summary["ci_low"] is None else f" [{pct(summary['ci_low'])}, {pct(summary['ci_high'])}]"
    level = f"{100 * summary[LEVEL_KEY]:g}%"
    head = ["task", "step", "prompts", "wins", "ties", "losses", "unparsed", f"win rate % [{level} CI]",
            "position consistency %"]
    row = [summary["task"], "" if summary["step"] is None else str(summary["step"]), str(summary["n_prompts"]),
           str(summary["wins"]), str(summary["ties"]), str(summary["losses"]), str(summary["unparsed"]),
           pct(summary["win_rate"]) + ci, pct(summary["position_consistency"])]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |"]) + "\n"


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """What a reader of the table must know: prompts of one run only, unparsed verdicts, files ignored."""
    notes = list(summary.get("notes", []))
    for run in ("policy", "baseline"):
        ids = summary[f"only_in_{run}_ids"]
        if ids:
            shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
            notes.append(f"{len(ids)} prompt(s) only in the {run} run, not judged (doc_id {shown})")
    if summary["unparsed"]:
        notes.append(f"{summary['unparsed']} prompt(s) left out of the win rate: {summary['unparsed_verdicts']} "
                     "verdict(s) unparsed (replies, attempts and errors in judgements.jsonl)")
    return notes
