"""``RankingTracker`` on TRL's ``DPOTrainer`` (tiny random model, CPU, two
steps): the tracking log has one row per tracked pair per evaluation, the
step-0 policy log-probabilities (and the initial-model reference) are
lm-eval's ``hf`` loglikelihoods of the same requests, the categories add up,
a reference model path gives the same reference, and the figures are drawn.
A reference read from an lm-eval run must hold the tracked documents."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

from lm_eval_rankacc.core.errors import TrainingDataError  # noqa: E402
from lm_eval_rankacc.outputs.columns import TaskSamples  # noqa: E402
from lm_eval_rankacc.core.theory import CATEGORIES  # noqa: E402
from lm_eval_rankacc.training import RankingTracker  # noqa: E402
from lm_eval_rankacc.training.figures import FIGURE2, FIGURE3  # noqa: E402
from lm_eval_rankacc.training.ranking_tracker import reference_from_run, tracked_pairs  # noqa: E402
from lm_eval_rankacc.training.tracking_log import SUMMARY_FILE, TRACKING_FILE, read_rows  # noqa: E402

N_TRACKED, STEPS = 6, 2


@pytest.fixture(scope="module")
def trl_run(tiny_model_dir, tmp_path_factory):
    """Two TRL DPO steps, evaluated at 0, 1 and 2, with two trackers: the
    initial model as reference, and the same model read from its folder."""
    out = tmp_path_factory.mktemp("trl-dpo")
    _, pairs = tracked_pairs("rankacc_demo", sample_size=0)
    rows = [{"prompt": p.prompt, "chosen": " " + p.chosen, "rejected": " " + p.rejected} for p in pairs[:8]]
    train = Dataset.from_list(rows)
    args = DPOConfig(output_dir=str(out / "trainer"), max_steps=STEPS, eval_strategy="steps", eval_steps=1,
                     eval_on_start=True, per_device_train_batch_size=4, per_device_eval_batch_size=4,
                     learning_rate=5e-3, beta=0.1, report_to=[], save_strategy="no", use_cpu=True,
                     disable_tqdm=True, logging_steps=1, max_length=256, seed=0)
    trackers = [RankingTracker(out / "initial", task="rankacc_demo", sample_size=N_TRACKED, seed=0),
                RankingTracker(out / "by_path", task="rankacc_demo", sample_size=N_TRACKED, seed=0,
                               reference=str(tiny_model_dir), plots=False)]
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args,
                         train_dataset=train, eval_dataset=train.select(range(4)),
                         processing_class=AutoTokenizer.from_pretrained(tiny_model_dir), callbacks=trackers)
    trainer.train()
    return out, trackers


def test_rows_are_tracked_pairs_times_evaluations(trl_run):
    out, (tracker, _) = trl_run
    rows = read_rows(out / "initial" / TRACKING_FILE)
    steps = sorted({r["step"] for r in rows})
    assert steps == list(range(STEPS + 1))
    assert len(rows) == N_TRACKED * len(steps)
    for step in steps:
        assert sorted(r["pair_id"] for r in rows if r["step"] == step) == sorted(tracker.dataset.ids)
    summaries = [json.loads(line) for line in (out / "initial" / SUMMARY_FILE).read_text().splitlines()]
    assert [s["step"] for s in summaries] == steps
    for s in summaries:
        assert s["set"] == "train" and s["n"] == N_TRACKED
        assert sum(s["categories"][c]["count"] for c in CATEGORIES) == N_TRACKED
        assert sum(s["categories"][c]["share"] for c in CATEGORIES) == pytest.approx(1.0)
    assert (out / "initial" / FIGURE2).is_file() and (out / "initial" / FIGURE3).is_file()
    config = json.loads((out / "initial" / "training_config.json").read_text())
    assert config["command"] == "track" and config["dpo"]["beta"] == 0.1
    last = [r for r in rows if r["step"] == STEPS]
    assert any(r["logp_chosen"] != r["ref_logp_chosen"] for r in last)  # the model was trained


def test_step0_equals_lm_eval_loglikelihood(trl_run, tiny_model_dir):
    out, (tracker, _) = trl_run
    by_id = {p.pair_id: p for p in tracker.pairs}
    step0 = [r for r in read_rows(out / "initial" / TRACKING_FILE) if r["step"] == 0]
    requests = [Instance("loglikelihood", doc={}, arguments=(by_id[r["pair_id"]].prompt, " " + text), idx=k)
                for r in step0 for k, text in enumerate((by_id[r["pair_id"]].chosen, by_id[r["pair_id"]].rejected))]
    lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=4, dtype="float32")
    expected = np.array([ll for ll, _ in lm.loglikelihood(requests)]).reshape(-1, 2)
    for key in (("logp_chosen", "logp_rejected"), ("ref_logp_chosen", "ref_logp_rejected")):
        got = np.array([[r[key[0]], r[key[1]]] for r in step0])
        # 1e-4, plus float32's resolution of a sum of hundreds of nats (both sides add float32 token scores)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-6)
    assert all(r["category"] in (CATEGORIES[0], CATEGORIES[3]) for r in step0)  # the policy is the reference


def test_reference_model_path_gives_the_initial_reference(trl_run):
    out, _ = trl_run
    a, b = (read_rows(out / name / TRACKING_FILE) for name in ("initial", "by_path"))
    key = lambda r: (r["step"], r["pair_id"])  # noqa: E731
    a, b = sorted(a, key=key), sorted(b, key=key)
    assert [key(r) for r in a] == [key(r) for r in b]
    for x, y in zip(a, b):
        assert x["ref_logp_chosen"] == pytest.approx(y["ref_logp_chosen"], abs=1e-5)
        assert x["logp_rejected"] == pytest.approx(y["logp_rejected"], abs=1e-5)
    assert not (out / "by_path" / FIGURE2).exists()  # plots=False


def test_reference_from_an_lm_eval_run():
    task, pairs = tracked_pairs("rankacc_demo", sample_size=N_TRACKED, seed=0)
    docs = {}
    for p in pairs:
        docs.setdefault(p.doc_id, {"id": p.doc_id, "prompt": p.prompt, "responses": [None, None]})
        docs[p.doc_id]["responses"][p.at[0]], docs[p.doc_id]["responses"][p.at[1]] = p.chosen, p.rejected
    ids = list(docs)
    loglik = [[-1.0 - k, -2.0 - k] for k in range(len(ids))]
    samples = TaskSamples(task, None, ids, ["h"] * len(ids), list(docs.values()), loglik, [[1, 1]] * len(ids),
                          [[1, 1]] * len(ids))
    ref = reference_from_run(samples, task, pairs)
    for p, (c, r) in zip(pairs, ref):
        k = ids.index(p.doc_id)
        assert (c, r) == (loglik[k][p.at[0]], loglik[k][p.at[1]])
    changed = replace(samples, docs=[{**d, "prompt": d["prompt"] + "!"} for d in samples.docs])
    with pytest.raises(TrainingDataError, match="with other content"):
        reference_from_run(changed, task, pairs)
    with pytest.raises(TrainingDataError, match="missing"):
        reference_from_run(replace(samples, ids=["x"] * len(ids)), task, pairs)


def test_distance_travelled_from_the_initial_weights(trl_run, tiny_model_dir):
    """Both trackers record ||theta_t - theta_0||_2: 0 at step 0, and at the
    last step the distance of the trained model's weights from the initial
    model's file (computed here with plain torch)."""
    from safetensors.torch import load_file

    out, (tracker, by_path) = trl_run
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    final = {k: v.detach().cpu() for k, v in tracker._model.state_dict().items()}
    assert set(final) == set(initial)
    dist = sum(float(((final[k].double() - initial[k].double()) ** 2).sum()) for k in initial) ** 0.5
    norm = sum(float((v.double() ** 2).sum()) for v in initial.values()) ** 0.5
    for name in ("initial", "by_path"):
        summaries = {s["step"]: s for s in map(json.loads, (out / name / SUMMARY_FILE).read_text().splitlines())}
        assert summaries[0]["weight_distance"] == 0.0
        assert summaries[STEPS]["weight_distance"] == pytest.approx(dist, rel=1e-9) and dist > 0
        assert summaries[STEPS]["weight_distance_ratio"] == pytest.approx(dist / norm, rel=1e-9)
