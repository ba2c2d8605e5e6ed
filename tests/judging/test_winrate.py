"""rankacc winrate: pairwise judging of two runs' generations (docs/winrate.md).

The judge is tests/judge_server.py, a deterministic OpenAI-compatible chat
server on 127.0.0.1; expected numbers are computed here from the outputs'
lengths, not by the package.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.judge_server import GARBAGE, JudgeServer

from lm_eval_rankacc import judging
from lm_eval_rankacc.cli import main
from lm_eval_rankacc.core.errors import RunError, UsageError
from lm_eval_rankacc.core.verdicts import parse_verdict

TASK = "rankacc_demo_gen"
TS = "2026-01-02T03-04-05.000006"
PROMPTS = [f"Question {k}: tell me about item {k}." for k in range(6)]
# policy vs baseline: longer, longer, shorter, equal, longer, equal
POLICY = ["A long and careful answer.", "Yes, indeed it is so.", "No.", "same len", "Plenty of detail here.", "xyz"]
BASELINE = ["Short.", "Yes.", "A much longer reply than that.", "SAME LEN", "Brief.", "abc"]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_gen_run(folder: Path, prompts: list[str], outputs: list[str], pretrained: str,
                  doc_ids: list[int] | None = None) -> Path:
    """An lm-eval --output_path folder of a generate_until task, as lm-eval 0.4 writes it with --log_samples."""
    sub = folder / "model"
    sub.mkdir(parents=True)
    with (sub / f"samples_{TASK}_{TS}.jsonl").open("w", encoding="utf-8") as fh:
        for k, (prompt, out) in enumerate(zip(prompts, outputs)):
            doc = {"id": f"d{k}", "prompt": prompt, "responses": ["r1", "r2"], "ranks": [1, 2]}
            context = f"\n\nHuman: {prompt}\n\nAssistant:"
            fh.write(json.dumps({
                "doc_id": doc_ids[k] if doc_ids else k, "doc": doc, "target": "",
                "arguments": {"gen_args_0": {"arg_0": context, "arg_1": {"until": ["\n\nHuman:"], "do_sample": False}}},
                "resps": [[out]], "filtered_resps": [out], "filter": "none", "metrics": ["bypass"],
                "doc_hash": _hash(json.dumps(doc, indent=2)), "prompt_hash": _hash(context),
                "target_hash": _hash(""), "bypass": 999,
            }) + "\n")
    results = {"results": {TASK: {"alias": TASK, "bypass,none": 999}}, "configs": {TASK: {"task": TASK}},
               "versions": {TASK: 1.0}, "n-samples": {TASK: {"original": len(prompts), "effective": len(prompts)}},
               "config": {"model": "hf", "model_args": f"pretrained={pretrained},dtype=float32"},
               "model_name": pretrained}
    (sub / f"results_{TS}.json").write_text(json.dumps(results), encoding="utf-8")
    return folder


@pytest.fixture
def runs(tmp_path):
    pol = write_gen_run(tmp_path / "policy", PROMPTS, POLICY, "out/dpo/checkpoint-40")
    base = write_gen_run(tmp_path / "base", PROMPTS, BASELINE, "out/sft")
    return pol, base


def hand_scores(policy: list[str], baseline: list[str]) -> list[float]:
    """A judge preferring the longer answer, asked both orders: 1 longer, 0 shorter, 1/2 equal."""
    return [1.0 if len(p) > len(b) else 0.0 if len(p) < len(b) else 0.5 for p, b in zip(policy, baseline)]


def loop_bootstrap(scores: list[float], n_boot: int, seed: int, level: float) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    x = np.asarray(scores)
    means = [x[rng.integers(0, len(x), size=len(x))].mean() for _ in range(n_boot)]
    return tuple(np.percentile(means, [50 * (1 - level), 100 - 50 * (1 - level)]))


def answers(request: dict) -> tuple[str, str]:
    user = request["body"]["messages"][-1]["content"]
    m = re.search(r"# Answer A\n\n(.*)\n\n# Answer B\n\n(.*)\n\n# Your verdict", user, re.DOTALL)
    return m.group(1), m.group(2)


def test_longer_judge_both_orders_and_hand_win_rate(runs, tmp_path, monkeypatch):
    pol, base = runs
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with JudgeServer("longer") as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="judge-1", output=tmp_path / "out",
                            bootstrap=500, seed=3, level=0.9, workers=2)
    shown = [answers(r) for r in srv.requests]
    assert len(shown) == 12
    for p, b in zip(POLICY, BASELINE):  # each prompt asked twice: the policy's output as A, then as B
        assert (p, b) in shown and (b, p) in shown
    assert all(r["body"]["temperature"] == 0 and r["body"]["model"] == "judge-1" for r in srv.requests)
    expected = hand_scores(POLICY, BASELINE)
    assert s["win_rate"] == pytest.approx(np.mean(expected))
    assert (s["wins"], s["ties"], s["losses"], s["unparsed"]) == (3, 2, 1, 0)
    assert s["position_consistency"] == 1.0 and s["n_prompts"] == 6
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(loop_bootstrap(expected, 500, 3, 0.9))
    assert s["step"] == 40 and s["task"] == TASK and s["confidence"] == 0.9
    assert s["judge"] == f"{srv.base_url} judge-1"
    assert all(r["authorization"] is None for r in srv.requests)  # no $OPENAI_API_KEY here: no header, a note
    assert "$OPENAI_API_KEY is not set: requests sent without an API key" in s["notes"]
    lines = [json.loads(x) for x in (tmp_path / "out" / "judgements.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and {k for k in lines[0]} >= {"doc_id", "order", "prompt", "output_a", "output_b",
                                                          "verdict", "raw", "attempts"}
    assert json.loads((tmp_path / "out" / "winrate.json").read_text())["win_rate"] == s["win_rate"]


def test_the_summary_file_is_the_format_figure_4_reads(runs, tmp_path):
    """winrate.json holds the keys of release 0.1, in order, and passes the
    check its reader (Figure 4) applies (one format: core/winrate_file.py)."""
    from lm_eval_rankacc.core.winrate_file import JUDGEMENTS_FILE, SUMMARY_FILE, check_summary
    from lm_eval_rankacc.training.figure4 import read_winrate

    pol, base = runs
    with JudgeServer("longer") as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", output=tmp_path / "out",
                            bootstrap=50)
    assert (judging.SUMMARY_FILE, judging.JUDGEMENTS_FILE) == (SUMMARY_FILE, JUDGEMENTS_FILE)
    written = json.loads((tmp_path / "out" / "winrate.json").read_text())
    assert list(written) == [
        "win_rate", "ci_low", "ci_high", "confidence", "bootstrap", "seed", "n_prompts", "n_scored", "wins", "ties",
        "losses", "unparsed", "unparsed_verdicts", "position_consistency", "position_inconsistent", "judge_calls",
        "attempts", "only_in_policy", "only_in_baseline", "only_in_policy_ids", "only_in_baseline_ids", "judge",
        "policy", "baseline", "policy_model", "baseline_model", "task", "step", "retries", "notes", "verdict", "logprob_margin"]
    assert written == json.loads(json.dumps(s)) and written["confidence"] == 0.95
    assert check_summary(written, "winrate.json")["step"] == 40
    read = read_winrate(tmp_path / "out" / "winrate.json")
    assert read["step"] == 40 and read["win_rate"] == s["win_rate"] and read["file"].endswith("winrate.json")


def test_confidence_is_the_deprecated_name_of_level(runs):
    """``confidence=`` (release 0.1) still sets the interval's level, with a DeprecationWarning."""
    pol, base = runs
    options = dict(judge_url=None, judge_model="m", bootstrap=200, seed=1)
    with JudgeServer("longer") as srv:
        options["judge_url"] = srv.base_url
        new = judging.winrate(pol, base, level=0.8, **options)
        with pytest.warns(DeprecationWarning, match=r"winrate\(confidence=...\) is deprecated.*use level="):
            old = judging.winrate(pol, base, confidence=0.8, **options)
        with pytest.warns(DeprecationWarning), pytest.raises(UsageError, match="give the interval's level once"):
            judging.winrate(pol, base, level=0.9, confidence=0.8, **options)
    assert old["confidence"] == new["confidence"] == 0.8
    assert (old["ci_low"], old["ci_high"]) == (new["ci_low"], new["ci_high"]) != (None, None)
    assert "80% CI" in judging.markdown_table(new)


def test_position_biased_judge_ties_and_inconsistency(runs):
    pol, base = runs
    with JudgeServer("always_a") as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", bootstrap=0)
    assert len(srv.requests) == 12
    assert (s["wins"], s["ties"], s["losses"]) == (0, 6, 0)  # "A" both times: the two orders disagree
    assert s["win_rate"] == 0.5 and s["ci_low"] is None
    assert s["position_consistency"] == 0.0 and s["position_inconsistent"] == 6


def test_garbage_is_retried_a_bounded_number_of_times(runs):
    pol, base = runs
    with JudgeServer("garbage_then", bad=2) as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", retries=3, retry_wait=0, bootstrap=0)
    assert len(srv.requests) == 12 * 3 and s["attempts"] == 36
    assert s["unparsed"] == 0 and s["win_rate"] == pytest.approx(np.mean(hand_scores(POLICY, BASELINE)))


def test_garbage_forever_is_counted_unparsed(runs, tmp_path):
    pol, base = runs
    with JudgeServer("garbage") as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", retries=2, retry_wait=0,
                            output=tmp_path / "o", bootstrap=100)
    assert len(srv.requests) == 12 * 3  # 1 + 2 retries per call, then given up
    assert (s["unparsed"], s["unparsed_verdicts"], s["n_prompts"]) == (6, 12, 6)
    assert s["win_rate"] is None and s["wins"] + s["ties"] + s["losses"] == 0
    lines = [json.loads(x) for x in (tmp_path / "o" / "judgements.jsonl").read_text().splitlines()]
    assert all(x["verdict"] == "unparsed" and x["raw"] == GARBAGE and x["attempts"] == 3 for x in lines)
    assert any("6 prompt(s) left out" in n for n in judging.summary_notes(s))


def test_http_errors_are_retried(runs):
    pol, base = runs
    with JudgeServer("error_then", bad=1) as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", retries=1, retry_wait=0, bootstrap=0)
    assert len(srv.requests) == 24 and s["unparsed"] == 0
    failing = write_gen_run(pol.parent / "failing", PROMPTS[:5] + ["[fail] " + PROMPTS[5]], POLICY, "a")
    other = write_gen_run(pol.parent / "other", PROMPTS[:5] + ["[fail] " + PROMPTS[5]], BASELINE, "b")
    with JudgeServer("error_marked") as srv:  # HTTP 500 for every ask of the last prompt
        s = judging.winrate(failing, other, judge_url=srv.base_url, judge_model="m", retries=2, retry_wait=0,
                            bootstrap=0)
    assert len(srv.requests) == 10 + 2 * 3 and (s["unparsed"], s["unparsed_verdicts"]) == (1, 2)
    assert s["win_rate"] == pytest.approx(np.mean(hand_scores(POLICY[:5], BASELINE[:5])))
    with JudgeServer("error_then", bad=5) as srv:  # never a reply: an error, not 12 unparsed verdicts
        with pytest.raises(UsageError, match="never answered.*HTTP 500"):
            judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", retries=1, retry_wait=0, bootstrap=0)
    assert len(srv.requests) == 24


def test_rejected_request_is_unparsed_not_retried(tmp_path):
    """HTTP 400 for one request (too long for the judge): that prompt is unparsed, the others judged."""
    prompts = PROMPTS[:5] + ["A very long prompt. " * 40]
    pol = write_gen_run(tmp_path / "p", prompts, POLICY, "a")
    base = write_gen_run(tmp_path / "b", prompts, BASELINE, "b")
    with JudgeServer("reject_long", bad=600) as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", retries=3, retry_wait=0, bootstrap=0,
                            output=tmp_path / "o")
    assert len(srv.requests) == 12 and (s["unparsed"], s["unparsed_verdicts"]) == (1, 2)
    assert s["win_rate"] == pytest.approx(np.mean(hand_scores(POLICY[:5], BASELINE[:5])))
    lines = [json.loads(x) for x in (tmp_path / "o" / "judgements.jsonl").read_text().splitlines()]
    assert [x["doc_id"] for x in lines if x["error"] and "HTTP 400" in x["error"]] == [5, 5]


def test_one_unparsed_order_leaves_the_prompt_out(runs):
    """A prompt counts only with both verdicts parsed; here one order of every prompt is garbage."""
    pol, base = runs

    class HalfJudge:
        name, deterministic = "half", True

        def ask(self, messages):
            a = messages[-1]["content"].split("# Answer A\n\n")[1].split("\n\n# Answer B")[0]
            return "A" if a in POLICY else "no idea"

    s = judging.winrate(pol, base, judge=HalfJudge(), bootstrap=0)
    assert (s["unparsed"], s["unparsed_verdicts"], s["win_rate"], s["position_consistency"]) == (6, 6, None, None)


def test_api_key_sent_but_never_written(runs, tmp_path, monkeypatch, capsys):
    pol, base = runs
    key = "sk-test-SECRET-123"
    monkeypatch.setenv("MY_JUDGE_KEY", key)
    with JudgeServer("longer", key=key) as srv:
        rc = main(["winrate", str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m",
                   "--judge-key-env", "MY_JUDGE_KEY", "--output", str(tmp_path / "o"), "--bootstrap", "50"])
    out, err = capsys.readouterr()
    assert rc == 0 and all(r["authorization"] == f"Bearer {key}" for r in srv.requests)
    assert "| task |" in out and "66.7" in out  # (3 + 2/2) / 6
    written = "".join(p.read_text() for p in (tmp_path / "o").iterdir())
    assert key not in out + err + written
    with JudgeServer("longer", key="another-key") as srv:  # refused: the user's to fix, one line, no key
        rc = main(["winrate", str(pol), str(base), "--judge-url", srv.base_url, "--judge-model", "m",
                   "--judge-key-env", "MY_JUDGE_KEY", "--workers", "1"])
    out, err = capsys.readouterr()
    assert rc == 2 and key not in out + err
    assert err.strip().splitlines()[-1].startswith("rankacc winrate: error:") and "HTTP 401" in err
    assert len(srv.requests) == 1  # the first refusal stops the calls not yet asked


def test_mismatched_prompts_are_an_error(tmp_path, capsys):
    pol = write_gen_run(tmp_path / "p", PROMPTS, POLICY, "a")
    other = write_gen_run(tmp_path / "b", PROMPTS[:2] + ["another prompt"] + PROMPTS[3:], BASELINE, "b")
    with pytest.raises(RunError, match="1 of 6 doc_ids have different prompts"):
        judging.winrate(pol, other, judge_url="http://127.0.0.1:9/v1", judge_model="m")
    assert main(["winrate", str(pol), str(other), "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m"]) == 2
    assert "different prompts" in capsys.readouterr().err


def test_prompts_of_one_run_only_are_reported(tmp_path):
    pol = write_gen_run(tmp_path / "p", PROMPTS[:5], POLICY[:5], "a")
    base = write_gen_run(tmp_path / "b", PROMPTS, BASELINE, "b")
    with JudgeServer("longer") as srv:
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", bootstrap=0, step=7)
    assert (s["n_prompts"], s["only_in_baseline"], s["only_in_baseline_ids"], s["only_in_policy"]) == (5, 1, [5], 0)
    assert s["step"] == 7 and len(srv.requests) == 10
    assert any("1 prompt(s) only in the baseline run" in n for n in judging.summary_notes(s))


def test_judge_options_are_checked(runs):
    pol, base = runs
    with pytest.raises(UsageError, match="name one judge"):
        judging.winrate(pol, base)
    with pytest.raises(UsageError, match="--retries"):
        judging.winrate(pol, base, judge_url="http://x/v1", judge_model="m", retries=-1)
    with pytest.raises(UsageError, match="not a transformers causal LM"):
        judging.winrate(pol, base, judge_local=str(pol))


@pytest.mark.parametrize("text, verdict", [
    ("A", "A"), (" b.\n", "B"), ("Tie", "tie"), ("TIE.", "tie"), ("A or B", "unparsed"), ("Answer A", "unparsed"),
    ("", "unparsed"), (None, "unparsed"), ("AB", "unparsed"), ("A..", "unparsed"),
])
def test_strict_verdict_parser(text, verdict):
    assert parse_verdict(text) == verdict


def test_local_judge_on_a_tiny_model(runs, tiny_model_dir, tmp_path, torch_one_thread):
    """A random tiny model replies garbage: every verdict unparsed, counted, asked once (greedy)."""
    pol, base = runs
    s = judging.winrate(pol, base, judge_local=str(tiny_model_dir), device="cpu", max_tokens=4, bootstrap=0,
                        output=tmp_path / "o")
    lines = [json.loads(x) for x in (tmp_path / "o" / "judgements.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(x["attempts"] == 1 for x in lines)
    expected_unparsed = sum(parse_verdict(x["raw"]) == "unparsed" for x in lines)
    assert s["unparsed_verdicts"] == expected_unparsed and s["judge"] == str(tiny_model_dir)


def lm_eval_generate(model_dir: Path, task: str, metadata: dict, output_path: Path) -> None:
    """What ``lm_eval --model hf --tasks TASK --metadata ... --gen_kwargs max_gen_toks=12 --output_path OUT
    --log_samples`` does, in this process (no interpreter start-up): lm-eval's own evaluation and writer."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from lm_eval_rankacc import tasks_dir

    tracker = EvaluationTracker(output_path=str(output_path))
    results = simple_evaluate(
        model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[task], device="cpu", batch_size=1,
        gen_kwargs="max_gen_toks=12", log_samples=True, evaluation_tracker=tracker, metadata=metadata,
        task_manager=TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata=metadata))
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for name in results["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])


GEN_TASK = "rankgen_hh_rlhf_test"


def lm_eval_generation_runs(tmp_path: Path, n_rows: int, sample_size: int) -> dict[str, Path]:
    """{"policy", "base"}: the lm-eval output folders of two tiny models (seeds 1 and 0, the
    policy's at ``dpo/checkpoint-3``) generating for ``sample_size`` of ``n_rows`` HH-style rows."""
    from tests.helpers.tiny_model import make_tiny_model

    rows = [{"chosen": f"\n\nHuman: Question {k}?\n\nAssistant: Good {k}.",
             "rejected": f"\n\nHuman: Question {k}?\n\nAssistant: Bad {k}."} for k in range(n_rows)]
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    models = {"policy": make_tiny_model(tmp_path / "dpo" / "checkpoint-3", seed=1),
              "base": make_tiny_model(tmp_path / "sft", seed=0)}
    meta = {"data_files": str(data), "sample_size": sample_size, "seed": 0}
    for name, path in models.items():
        lm_eval_generate(path, GEN_TASK, meta, tmp_path / name)
    return {name: tmp_path / name for name in models}


def test_lm_eval_generations_then_winrate_end_to_end(tmp_path, torch_one_thread, capsys):
    """Two tiny models generate through lm-eval (the generate_until task), then
    `rankacc winrate` judges them with the longer-answer judge."""
    gen_task = GEN_TASK
    models = lm_eval_generation_runs(tmp_path, 5, 4)
    outputs = {}
    for name in models:
        (samples,) = (tmp_path / name).rglob(f"samples_{gen_task}_*.jsonl")
        lines = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
        outputs[name] = {x["doc_id"]: x["filtered_resps"][0] for x in lines}
    ids = sorted(outputs["policy"])
    expected = hand_scores([outputs["policy"][d].strip() for d in ids], [outputs["base"][d].strip() for d in ids])
    with JudgeServer("longer") as srv:
        rc = main(["winrate", str(tmp_path / "policy"), str(tmp_path / "base"), "--judge-url", srv.base_url,
                   "--judge-model", "m", "--output", str(tmp_path / "judged"), "--bootstrap", "100"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "judged" / "winrate.json").read_text())
    assert len(srv.requests) == 2 * len(ids) == 8 and s["task"] == gen_task and s["step"] == 3
    assert s["win_rate"] == pytest.approx(np.mean(expected)) and s["unparsed"] == 0


def test_run_arguments_and_task_choice(tmp_path):
    """A run is a folder, its model sub-folder, a results JSON or a samples file; the newest samples file of a
    task wins (the older named in a note); runs with several tasks need --task."""
    pol = write_gen_run(tmp_path / "p", PROMPTS, POLICY, "a")
    base = write_gen_run(tmp_path / "b", PROMPTS, BASELINE, "b")
    sub = base / "model"
    old = sub / f"samples_{TASK}_2025-01-01T00-00-00.000001.jsonl"
    old.write_text((sub / f"samples_{TASK}_{TS}.jsonl").read_text().replace("Short.", "Old and long answer!!"))
    with JudgeServer("longer") as srv:
        for policy_arg, base_arg in [(pol, base), (pol / "model", sub / f"results_{TS}.json"),
                                     (pol / "model" / f"samples_{TASK}_{TS}.jsonl", sub)]:
            s = judging.winrate(policy_arg, base_arg, judge_url=srv.base_url, judge_model="m", bootstrap=0)
            assert s["win_rate"] == pytest.approx(np.mean(hand_scores(POLICY, BASELINE))), (policy_arg, base_arg)
        assert any(old.name in n for n in s["notes"])
        (sub / f"samples_other_task_{TS}.jsonl").write_text((sub / f"samples_{TASK}_{TS}.jsonl").read_text())
        (pol / "model" / f"samples_other_task_{TS}.jsonl").write_text("")
        with pytest.raises(RunError, match="2 tasks"):
            judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m")
        s = judging.winrate(pol, base, judge_url=srv.base_url, judge_model="m", bootstrap=0, task="rankacc_*")
        assert s["task"] == TASK
