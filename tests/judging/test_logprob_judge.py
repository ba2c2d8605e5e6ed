"""``rankacc winrate --judge-verdict logprob`` (docs/winrate.md, "The log-probability verdict")
checked against a hand computation.

The independent side here: the judge's prompt rendered by hand (the plain
join ending in ``Verdict:``, or a chat template written out), a plain
transformers forward pass of the whole prompt + answer string, the softmax
in float64, and the documented answer strings (each word bare and after one
space) summed per word; then the normalisation, the policy's preference,
the mean over both orders and the margin rule, each written out below. The
package computes the same through its key/value-cache scorer.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lm_eval_rankacc import judging
from lm_eval_rankacc.cli import main
from lm_eval_rankacc.core.verdicts import combine_logprob, logprob_win_rate
from lm_eval_rankacc.judging.judges import LocalJudge, judge_messages
from tests.helpers.judge_server import JudgeServer
from tests.helpers.tiny_model import load_float32
from tests.judging.test_winrate import (
    BASELINE,
    GEN_TASK,
    POLICY,
    PROMPTS,
    lm_eval_generation_runs,
    write_gen_run,
)

#: The answer strings of each word, as docs/winrate.md lists them.
FORMS = {"A": ["A", " A"], "B": ["B", " B"], "tie": ["tie", " tie", "Tie", " Tie", "TIE", " TIE"]}
MARGIN = 0.1
#: Outputs that move the tiny random judge's mean preference to both sides of 1/2.
TINY_PROMPTS = ["Which?", "Which one?", "Tell me.", "Why?", "Which?", "Say it."]
TINY_POLICY = ["e" * 60, "!!!!?" * 12, "0 1 2 3 4 5 6 7 8 9 " * 3, "A" * 60, "B" * 60, "Hello world! " * 4]
TINY_BASELINE = ["A" * 60, "A" * 60, "e" * 60, "tie " * 15, "e" * 60, "zzzz " * 12]
LOGPROB_KEYS = {"doc_id", "order", "prompt", "output_a", "output_b", "verdict", "preferred", "probs", "shares",
                "policy_preference", "mean_preference", "score", "attempts", "error"}


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """A tokenizer without a chat template: the contents joined by blank lines, then ``Verdict:``."""
    return "\n\n".join(m["content"] for m in messages) + "\n\nVerdict:"


def hand_probs(model, tok, text: str) -> dict[str, float]:
    """p(word) = the sum over the word's strings s of p(s | text): one full forward pass per string."""
    import torch

    context = tok(text, add_special_tokens=False)["input_ids"]
    out = {}
    for word, forms in FORMS.items():
        total = 0.0
        for form in forms:
            cont = tok(form, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([context + cont])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            total += math.exp(sum(float(logp[len(context) - 1 + k, t]) for k, t in enumerate(cont)))
        out[word] = total
    return out


def hand_preference(probs: dict[str, float], order: str) -> tuple[dict[str, float], float]:
    """(shares normalised over A, B, tie; the policy's label's share + half the tie's)."""
    total = probs["A"] + probs["B"] + probs["tie"]
    shares = {k: probs[k] / total for k in ("A", "B", "tie")}
    own = "A" if order == "policy_a" else "B"
    return shares, shares[own] + shares["tie"] / 2


def hand_score(first: float, second: float, margin: float = MARGIN) -> float:
    mean = (first + second) / 2
    return 1.0 if mean > 0.5 + margin else 0.0 if mean < 0.5 - margin else 0.5


def hand_side(pref: float) -> str:
    return "policy" if pref > 0.5 else "baseline" if pref < 0.5 else "tie"


def read_lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines()]


def check_lines_by_hand(lines: list[dict], model, tok, render=plain_prompt) -> dict:
    """Every judgement recomputed by hand; returns doc_id -> (preference as A, preference as B)."""
    prefs: dict = {}
    for line in lines:
        probs = hand_probs(model, tok, render(judge_messages(line["prompt"], line["output_a"], line["output_b"])))
        shares, pref = hand_preference(probs, line["order"])
        assert line["probs"] == pytest.approx(probs, rel=1e-6, abs=1e-12), line["doc_id"]
        assert line["shares"] == pytest.approx(shares, rel=1e-6)
        assert line["policy_preference"] == pytest.approx(pref, rel=1e-6)
        assert line["verdict"] == max(shares, key=shares.get) and line["preferred"] == hand_side(pref)
        assert line["error"] is None and line["attempts"] == 1
        prefs.setdefault(line["doc_id"], {})[line["order"]] = pref
    pairs = {d: (v["policy_a"], v["policy_b"]) for d, v in prefs.items()}
    for line in lines:
        first, second = pairs[line["doc_id"]]
        assert line["mean_preference"] == pytest.approx((first + second) / 2, rel=1e-6)
        assert line["score"] == hand_score(first, second)
    return pairs


def check_summary_by_hand(s: dict, pairs: dict) -> None:
    scores = [hand_score(p, q) for p, q in pairs.values()]
    assert s["n_prompts"] == len(pairs) and s["judge_calls"] == 2 * len(pairs) and s["unparsed"] == 0
    assert s["unparsed_verdicts"] == 0 and s["wins"] + s["ties"] + s["losses"] == len(pairs)
    assert (s["wins"], s["ties"], s["losses"]) == (scores.count(1.0), scores.count(0.5), scores.count(0.0))
    assert s["win_rate"] == pytest.approx(np.mean(scores))
    consistent = sum(hand_side(p) == hand_side(q) for p, q in pairs.values())
    assert s["position_consistency"] == pytest.approx(consistent / len(pairs))
    assert s["verdict"] == "logprob" and s["logprob_margin"] == MARGIN
    assert any("above 0.6, a loss below 0.4, else a tie (margin 0.1)" in n for n in s["notes"])


@pytest.fixture
def tiny_runs(tmp_path):
    pol = write_gen_run(tmp_path / "policy", TINY_PROMPTS, TINY_POLICY, "out/dpo/checkpoint-5")
    base = write_gen_run(tmp_path / "base", TINY_PROMPTS, TINY_BASELINE, "out/sft")
    return pol, base


def test_tiny_local_judge_against_a_hand_computation(tiny_runs, tiny_model_dir, tmp_path, capsys):
    """Both orders' probabilities, the normalisation, the preference, the mean and the margin, by hand."""
    pol, base = tiny_runs
    rc = main(["winrate", str(pol), str(base), "--judge-local", str(tiny_model_dir), "--judge-device", "cpu",
               "--judge-verdict", "logprob", "--output", str(tmp_path / "out"), "--bootstrap", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = read_lines(tmp_path / "out")
    assert [(x["doc_id"], x["order"]) for x in lines] == [(d, o) for d in range(6) for o in ("policy_a", "policy_b")]
    for x in lines:  # the policy's output shown as A, then as B
        mine, theirs = TINY_POLICY[x["doc_id"]], TINY_BASELINE[x["doc_id"]]
        assert (x["output_a"], x["output_b"]) == ((mine, theirs) if x["order"] == "policy_a" else (theirs, mine))
        assert set(x) == LOGPROB_KEYS
    model, tok = load_float32(tiny_model_dir)
    pairs = check_lines_by_hand(lines, model, tok)
    s = json.loads((tmp_path / "out" / "winrate.json").read_text())
    check_summary_by_hand(s, pairs)
    assert "| rankacc_demo_gen | 5 | 6 |" in out and "log-probability verdicts" in err
    # A random judge hardly tells the slots apart: every mean is within the margin, a tie, but not
    # exactly 1/2, so with no margin each would be a win or a loss: the margin decides these ties.
    means = [(p + q) / 2 for p, q in pairs.values()]
    assert all(abs(m - 0.5) <= MARGIN for m in means) and (s["wins"], s["losses"]) == (0, 0)
    assert min(means) < 0.5 < max(means)
    assert {combine_logprob(p, q, 0.0) for p, q in pairs.values()} == {0.0, 1.0}


def test_the_combination_on_the_recorded_preferences_with_margins_set_here(tiny_runs, tiny_model_dir, tmp_path):
    """The recorded per-order preferences of the tiny judge, combined with margins chosen between their
    distances from 1/2: wins, ties by margin and losses, counted as the hand rule counts them."""
    pol, base = tiny_runs
    judging.winrate(pol, base, judge_local=str(tiny_model_dir), device="cpu", verdict="logprob", bootstrap=0,
                    output=tmp_path / "out")
    by_doc: dict = {}
    for x in read_lines(tmp_path / "out"):
        by_doc.setdefault(x["doc_id"], {})[x["order"]] = x["policy_preference"]
    pairs = [(v["policy_a"], v["policy_b"]) for v in by_doc.values()]
    gaps = sorted(abs((p + q) / 2 - 0.5) for p, q in pairs)
    assert gaps[0] > 0 and len(set(gaps)) == len(gaps)
    for margin, ties in ((0.0, 0), ((gaps[1] + gaps[2]) / 2, 2), ((gaps[-2] + gaps[-1]) / 2, 5), (0.49, 6)):
        scores = [hand_score(p, q, margin) for p, q in pairs]
        rate = logprob_win_rate(pairs, margin)
        assert (rate.wins, rate.ties, rate.losses) == (scores.count(1.0), scores.count(0.5), scores.count(0.0))
        assert rate.ties == ties and rate.win_rate == pytest.approx(np.mean(scores)) and rate.unparsed == 0
    assert rate.position_consistency == pytest.approx(
        sum(hand_side(p) == hand_side(q) for p, q in pairs) / len(pairs))


def test_answer_strings_and_the_chat_templates_answer_position(tiny_model_dir, tmp_path):
    """Which strings count for A, B and tie (each tokenized alone), and with a chat template the answer
    read right after the template's generation prompt."""
    from transformers import AutoTokenizer

    judge = LocalJudge(str(tiny_model_dir), device="cpu")
    tok = judge.tokenizer
    expected = {w: [tuple(tok(f, add_special_tokens=False)["input_ids"]) for f in forms] for w, forms in FORMS.items()}
    assert judge.answer_sequences() == expected
    assert expected["A"] == [(tok.convert_tokens_to_ids("A"),), (tok.convert_tokens_to_ids("Ġ"),
                                                                  tok.convert_tokens_to_ids("A"))]
    assert len(expected["tie"][0]) == 3  # "t", "i", "e": the whole word counts, not its first token alone
    templated = tmp_path / "templated"
    shutil.copytree(tiny_model_dir, templated)
    t = AutoTokenizer.from_pretrained(templated)
    t.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                       "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    t.save_pretrained(templated)
    messages = judge_messages("Which?", "e" * 30, "Hello world!")

    def by_hand(ms: list[dict[str, str]]) -> str:
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in ms) + "<|assistant|>\n"

    chat = LocalJudge(str(templated), device="cpu")
    assert chat.prompt_text(messages) == by_hand(messages)
    model, tok2 = load_float32(templated)
    got = chat.answer_probs(messages)
    assert got == pytest.approx(hand_probs(model, tok2, by_hand(messages)), rel=1e-6)
    assert got != pytest.approx(judge.answer_probs(messages), rel=1e-3)  # another answer position


class ScriptedJudge:
    """Answer-word probabilities set by hand per (output A, output B)."""

    name, deterministic = "scripted", True

    def __init__(self, table: dict[tuple[str, str], dict[str, float]]):
        self.table, self.calls = table, 0

    def answer_probs(self, messages: list[dict[str, str]]) -> dict[str, float]:
        self.calls += 1
        user = messages[-1]["content"]
        a = user.split("# Answer A\n\n")[1].split("\n\n# Answer B")[0]
        b = user.split("# Answer B\n\n")[1].split("\n\n# Your verdict")[0]
        return self.table[(a, b)]


#: doc: (policy's output, baseline's, probabilities with the policy as A, as B, then by hand:
#: preference as A, as B, score, consistent).
CASES = [
    ("p0", "b0", {"A": .6, "B": .2, "tie": .2}, {"A": .1, "B": .7, "tie": .2}, .7, .8, 1.0, True),  # a win
    ("p1", "b1", {"A": .2, "B": .7, "tie": .1}, {"A": .5, "B": .3, "tie": .2}, .25, .4, 0.0, True),  # a loss
    ("p2", "b2", {"A": .55, "B": .45, "tie": 0}, {"A": .42, "B": .58, "tie": 0}, .55, .58, 0.5, True),  # mean .565
    ("p3", "b3", {"A": .6, "B": .4, "tie": 0}, {"A": .4, "B": .6, "tie": 0}, .6, .6, 0.5, True),  # at 1/2 + margin
    ("p4", "b4", {"A": .4, "B": .6, "tie": 0}, {"A": .6, "B": .4, "tie": 0}, .4, .4, 0.5, True),  # at 1/2 - margin
    ("p5", "b5", {"A": .9, "B": .05, "tie": .05}, {"A": .9, "B": .05, "tie": .05}, .925, .075, 0.5, False),  # "A"
    ("p6", "b6", {"A": .002, "B": .001, "tie": .001}, {"A": .0001, "B": .0006, "tie": .0003}, .625, .75, 1.0, True),
]


def test_combination_rule_and_margin_on_constructed_probabilities(tmp_path):
    """Wins, losses, a tie by margin, both bounds (ties), a position-only judge, unnormalised probabilities."""
    prompts = [f"Prompt {k}?" for k in range(len(CASES))]
    pol = write_gen_run(tmp_path / "p", prompts, [c[0] for c in CASES], "a")
    base = write_gen_run(tmp_path / "b", prompts, [c[1] for c in CASES], "b")
    table = {}
    for mine, theirs, as_a, as_b, *_ in CASES:
        table[(mine, theirs)], table[(theirs, mine)] = as_a, as_b
    judge = ScriptedJudge(table)
    s = judging.winrate(pol, base, judge=judge, verdict="logprob", bootstrap=0, output=tmp_path / "o")
    assert judge.calls == 14 == s["judge_calls"]
    lines = read_lines(tmp_path / "o")
    for k, (_, _, _, _, pref_a, pref_b, score, _) in enumerate(CASES):
        first, second = (x for x in lines if x["doc_id"] == k)
        assert (first["policy_preference"], second["policy_preference"]) == pytest.approx((pref_a, pref_b))
        assert first["mean_preference"] == second["mean_preference"] == pytest.approx((pref_a + pref_b) / 2)
        assert first["score"] == second["score"] == score, k
    assert lines[-2]["shares"] == pytest.approx({"A": .5, "B": .25, "tie": .25})
    assert (s["wins"], s["ties"], s["losses"], s["unparsed"]) == (2, 4, 1, 0)
    assert s["win_rate"] == pytest.approx(4 / 7)
    assert s["position_consistency"] == pytest.approx(6 / 7) and s["position_inconsistent"] == 1


def test_unusable_probabilities_are_counted_unparsed(tmp_path):
    """An API judge whose top tokens hold no answer word (all 0), or NaN: unparsed, retried, counted."""
    pol = write_gen_run(tmp_path / "p", PROMPTS[:2], POLICY[:2], "a")
    base = write_gen_run(tmp_path / "b", PROMPTS[:2], BASELINE[:2], "b")

    class Blank(ScriptedJudge):
        deterministic = False

        def answer_probs(self, messages):
            self.calls += 1
            return {"A": 0.0, "B": 0.0, "tie": 0.0} if "item 0" in messages[-1]["content"] else \
                {"A": float("nan"), "B": 0.1, "tie": 0.1}

    judge = Blank({})
    s = judging.winrate(pol, base, judge=judge, verdict="logprob", bootstrap=0, retries=2, retry_wait=0,
                        output=tmp_path / "o")
    assert judge.calls == 4 * 3 and s["attempts"] == 12
    assert (s["unparsed"], s["unparsed_verdicts"], s["win_rate"], s["n_scored"]) == (2, 4, None, 0)
    lines = read_lines(tmp_path / "o")
    assert all(x["verdict"] == "unparsed" and x["score"] is None and x["mean_preference"] is None for x in lines)
    assert any("2 prompt(s) left out" in n for n in judging.summary_notes(s))
    # strict JSON: the NaN probability is written as null, never as the bare word NaN
    def refuse(word):
        raise AssertionError(f"non-standard JSON constant {word} in judgements.jsonl")
    texts = (tmp_path / "o" / "judgements.jsonl").read_text(encoding="utf-8").splitlines()
    stored = [json.loads(t, parse_constant=refuse) for t in texts]
    assert any(x["probs"]["A"] is None for x in stored)
    json.loads((tmp_path / "o" / "winrate.json").read_text(encoding="utf-8"), parse_constant=refuse)


def _hand_api(length_policy: int, length_base: int, p_top: float, order: str) -> float:
    """tests/helpers/judge_server.py's logprobs mode: the longer answer's label (tie when equal) p_top,
    the other two words (1 - p_top) * 0.45 each, a filler token the rest (not an answer word)."""
    a, b = (length_policy, length_base) if order == "policy_a" else (length_base, length_policy)
    label = "A" if a > b else "B" if b > a else "tie"
    probs = {w: (p_top if w == label else (1 - p_top) * 0.45) for w in ("A", "B", "tie")}
    return hand_preference(probs, order)[1]


@pytest.mark.parametrize("p_top, counts", [(0.7, (3, 2, 1)), (0.4, (0, 6, 0))])
def test_api_judge_top_logprobs_by_hand(tmp_path, p_top, counts):
    """`--judge-url` with top_logprobs: 12 calls asking one token and 20 log-probabilities; at p_top 0.4
    the longer answer's preference is 0.569 in both orders: a tie by margin (position consistent)."""
    pol = write_gen_run(tmp_path / "p", PROMPTS, POLICY, "out/dpo/checkpoint-40")
    base = write_gen_run(tmp_path / "b", PROMPTS, BASELINE, "out/sft")
    with JudgeServer("logprobs", p_top=p_top) as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="j", verdict="logprob", bootstrap=0,
                            output=tmp_path / "o", workers=2)
    bodies = [r["body"] for r in srv.requests]
    assert len(bodies) == 12 == s["judge_calls"]
    assert all((b["logprobs"], b["top_logprobs"], b["max_tokens"], b["temperature"]) == (True, 20, 1, 0)
               for b in bodies)
    pairs = {}
    for x in read_lines(tmp_path / "o"):
        lp, lb = len(POLICY[x["doc_id"]]), len(BASELINE[x["doc_id"]])
        assert x["policy_preference"] == pytest.approx(_hand_api(lp, lb, p_top, x["order"]))
        assert sum(x["probs"].values()) == pytest.approx(p_top + 0.9 * (1 - p_top))  # the filler left out
        pairs.setdefault(x["doc_id"], []).append(x["policy_preference"])
    scores = [hand_score(*v) for v in pairs.values()]
    assert (s["wins"], s["ties"], s["losses"]) == counts == (scores.count(1.0), scores.count(0.5), scores.count(0.0))
    assert s["win_rate"] == pytest.approx(np.mean(scores)) and s["unparsed"] == 0
    assert s["position_consistency"] == 1.0
    if p_top == 0.4:
        assert _hand_api(10, 5, 0.4, "policy_a") == pytest.approx(0.535 / 0.94)


def test_api_without_logprobs_is_one_line_error(tmp_path, capsys):
    pol = write_gen_run(tmp_path / "p", PROMPTS[:2], POLICY[:2], "a")
    base = write_gen_run(tmp_path / "b", PROMPTS[:2], BASELINE[:2], "b")
    with JudgeServer("longer") as srv:  # its replies carry no logprobs
        rc = main(["winrate", str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m",
                   "--judge-verdict", "logprob", "--retries", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("rankacc winrate: error: the judge never answered")
    assert "logprobs" in err[-1] and "Traceback" not in "\n".join(err) and len(srv.requests) == 4


def test_two_lm_eval_generation_runs_then_the_tiny_logprob_judge(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """Two tiny models generate through lm-eval's generate_until task; the tiny judge reads its answer
    probabilities: 2 x prompts calls, nothing unparsed, counts that add up, every line as by hand."""
    runs = lm_eval_generation_runs(tmp_path, 6, 5)
    calls = []
    original = LocalJudge.answer_probs
    monkeypatch.setattr(LocalJudge, "answer_probs", lambda self, m: calls.append(m) or original(self, m))
    rc = main(["winrate", str(runs["policy"]), str(runs["base"]), "--judge-local", str(tiny_model_dir),
               "--judge-device", "cpu", "--judge-verdict", "logprob", "--output", str(tmp_path / "judged"),
               "--bootstrap", "200"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    s = json.loads((tmp_path / "judged" / "winrate.json").read_text())
    assert len(calls) == 10 == s["judge_calls"] and s["n_prompts"] == 5 and s["task"] == GEN_TASK
    assert s["step"] == 3 and s["ci_low"] <= s["win_rate"] <= s["ci_high"]
    lines = read_lines(tmp_path / "judged")
    assert len(lines) == 10 and all(set(x) == LOGPROB_KEYS for x in lines)
    model, tok = load_float32(tiny_model_dir)
    check_summary_by_hand(s, check_lines_by_hand(lines, model, tok))
    assert f"| {GEN_TASK} | 3 | 5 |" in out and "log-probability verdicts" in err
