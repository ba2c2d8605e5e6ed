"""Data-parallel runs give the same aggregates as a single run.

Every rankacc metric is a pure function of one document, so lm-eval's data
parallelism (rank r of k scores the documents ``create_iterator(docs, rank=r,
world_size=k)``; rank 0 gathers the per-document values, concatenates them
rank by rank and aggregates) must reproduce the single-process aggregate.

Two levels:

- ``test_gathered_shards_*``: synthetic documents (2 to 4 responses, human
  ties, NaN scores) through ``metrics.process_results``, sharded with
  ``lm_eval.utils.create_iterator``, gathered like lm-eval and aggregated
  with the task's own aggregation functions.
- ``test_evaluate_data_parallel``: lm-eval's real ``evaluate`` run as k ranks
  in k threads, with a deterministic fake backend whose ``gather_object`` /
  ``all_gather`` / ``barrier`` exchange between the threads; rank 0's results
  must equal a world-size-1 run's.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import zlib
from collections import defaultdict

import pytest
import torch

from lm_eval_rankacc.lmeval.loglikelihood import Loglikelihood
from lm_eval_rankacc.lmeval.metrics import process_results

WORLD_SIZES = (2, 3)
#: Aggregates that must match bit for bit: 0/1 means (sums of 0.0 and 1.0 are
#: exact in any order) and integer counts.
EXACT = ("rank_acc", "rank_acc_norm", "rank_acc_bytes", "invalid", "scores")


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    from lm_eval_rankacc import tasks_dir

    return TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata={"sample_size": 0})


@pytest.fixture(scope="module")
def aggregation(task_manager):
    """The rankacc tasks' aggregation functions (as lm-eval uses them), by metric."""
    task = task_manager.load(["rankacc_demo"])["tasks"]["rankacc_demo"]
    agg = dict(task.aggregation())
    assert set(EXACT) <= agg.keys()
    return agg


# ------------------------------------------------------------------ synthetic documents
def synthetic_documents(n_docs: int = 61, seed: int = 7) -> list[tuple[dict, list]]:
    """(doc, results) pairs: 2-4 responses, ties, some NaN / -inf scores,
    integer token counts; results as the harness's backends return them."""
    rng = random.Random(seed)
    out = []
    for i in range(n_docs):
        n = rng.choice((2, 2, 2, 3, 4))
        while True:
            ranks = [rng.randint(1, n) for _ in range(n)]
            if len(set(ranks)) > 1 or n == 2:
                break
        responses = [" ".join(rng.choice(("yes", "no", "maybe", "caf\u00e9", "x")) for _ in range(rng.randint(0, 6))) for _ in range(n)]
        results = []
        for _ in range(n):
            ll = -rng.uniform(0.0, 40.0)
            if rng.random() < 0.1:  # exact ties of scores across responses
                ll = -10.0
            if rng.random() < 0.04:
                ll = rng.choice((math.nan, -math.inf))
            results.append(Loglikelihood((ll, False), rng.randint(1, 12)))
        doc = {"id": f"syn/{i}", "prompt": f"prompt {i}", "responses": responses, "ranks": ranks}
        out.append((doc, results))
    return out


def aggregate(agg: dict, items_by_metric: dict[str, list]) -> dict[str, float]:
    """lm-eval's aggregation step: the task's function per metric, ``mean``
    for a metric without one (as ``_compute_task_aggregations`` does)."""
    from lm_eval.api.metrics import mean

    return {m: agg.get(m, mean)(items) for m, items in items_by_metric.items()}


def per_document_metrics(pairs) -> dict[str, list]:
    items = defaultdict(list)
    for doc, results in pairs:
        for metric, value in process_results(doc, results).items():
            items[metric].append(value)
    return dict(items)


def test_create_iterator_partitions_documents():
    from lm_eval.utils import create_iterator

    docs = list(range(61))
    for k in WORLD_SIZES:
        shards = [[d for _, d in create_iterator(enumerate(docs), rank=r, world_size=k)] for r in range(k)]
        assert sorted(itertools.chain.from_iterable(shards)) == docs
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_gathered_shards_give_the_whole_aggregate(aggregation, world_size):
    from lm_eval.utils import create_iterator

    pairs = synthetic_documents()
    whole_items = per_document_metrics(pairs)
    whole = aggregate(aggregation, whole_items)
    # the synthetic data exercise what they should
    assert {"pair_acc", "pair_acc_norm"} <= whole.keys()
    assert whole["invalid"] > 0 and 0 < whole["rank_acc"] < 1 and 0 < whole["rank_acc_norm"] < 1

    # each rank: its documents, its per-document metric lists
    per_rank = [
        per_document_metrics(pair for _, pair in create_iterator(enumerate(pairs), rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    # rank 0: gather and concatenate rank by rank, per metric
    gathered = {
        metric: list(itertools.chain.from_iterable(rank_items.get(metric, []) for rank_items in per_rank))
        for metric in whole_items
    }
    for metric in whole_items:
        assert sorted(map(repr, gathered[metric])) == sorted(map(repr, whole_items[metric])), metric
    sharded = aggregate(aggregation, gathered)

    assert sharded.keys() == whole.keys()
    for metric in EXACT:
        assert sharded[metric] == whole[metric], metric
    for metric in whole.keys() - set(EXACT):
        # pair_acc values are fractions: a different summation order may move the last bit
        assert sharded[metric] == pytest.approx(whole[metric], rel=1e-12, abs=0), metric


# ------------------------------------------------------------------ lm-eval's evaluate, k ranks in threads
class _Exchange:
    """What torch.distributed would do between the ranks, for threads."""

    def __init__(self, world_size: int):
        self.slots: list = [None] * world_size
        self.barrier = threading.Barrier(world_size, timeout=60)

    def all(self, rank: int, obj) -> list:
        self.slots[rank] = obj
        self.barrier.wait()
        objs = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before all have read
        return objs


def fake_loglik(context: list[int], continuation: list[int]) -> float:
    """A deterministic score of one tokenized request; NaN for a few."""
    h = zlib.crc32(bytes(t % 256 for t in context + continuation))
    if h % 31 == 0:
        return math.nan
    return -sum(((t * 131 + i * 7 + len(context)) % 23) / 7 for i, t in enumerate(continuation))


def _fake_lm_class():
    from lm_eval.api.model import TemplateLM

    class FakeRankLM(TemplateLM):
        """A byte-tokenizing TemplateLM (so the harness's token counts apply)
        playing rank ``rank`` of ``world_size``."""

        device = "cpu"

        def __init__(self, rank: int = 0, world_size: int = 1, exchange: _Exchange | None = None):
            super().__init__()
            self._rank, self._world_size, self.exchange = rank, world_size, exchange
            self.n_requests = 0

        @property
        def eot_token_id(self) -> int:
            return 0

        def tok_encode(self, string, add_special_tokens=None, **kwargs):
            return [b + 1 for b in string.encode("utf-8")]

        def _loglikelihood_tokens(self, requests, **kwargs):
            self.n_requests += len(requests)
            return [(fake_loglik(ctx, cont), False) for _, ctx, cont in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        def all_gather(self, tensor):
            return torch.stack(self.exchange.all(self._rank, tensor))

        def gather_object(self, obj, dst=0):
            objs = self.exchange.all(self._rank, obj)
            return objs if self._rank == dst else None

        def barrier(self) -> None:
            self.exchange.barrier.wait()

    return FakeRankLM


TASKS = ["rankacc_demo", "rankacc_hh_rlhf_test", "rankacc_alpaca_farm_val_ties"]


def _run_ranks(task_manager, world_size: int) -> tuple[list, list]:
    from lm_eval.evaluator import evaluate

    FakeRankLM = _fake_lm_class()
    exchange = _Exchange(world_size) if world_size > 1 else None
    lms = [FakeRankLM(r, world_size, exchange) for r in range(world_size)]
    task_dicts = [task_manager.load(TASKS) for _ in range(world_size)]  # each rank its own tasks
    results: list = [None] * world_size
    errors: list = []

    def rank_main(r: int) -> None:
        try:
            results[r] = evaluate(lm=lms[r], task_dict=task_dicts[r], log_samples=True, bootstrap_iters=0)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append((r, err))
            if exchange is not None:
                exchange.barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(r,), daemon=True) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results, lms


@pytest.fixture(scope="module")
def single_run(task_manager, hub_mirror):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKACC_DATA_DIR", str(hub_mirror))
        (result,), (lm,) = _run_ranks(task_manager, 1)
    return result, lm.n_requests


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_evaluate_data_parallel(task_manager, hub_mirror, single_run, world_size):
    single_run, n_requests = single_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKACC_DATA_DIR", str(hub_mirror))
        results, lms = _run_ranks(task_manager, world_size)
    assert all(r is None for r in results[1:])  # only rank 0 reports
    sharded = results[0]

    # every rank scored only its share (plus lm-eval's padding requests)
    assert all(lm.n_requests < n_requests for lm in lms)
    assert sum(lm.n_requests for lm in lms) >= n_requests

    for task in TASKS:
        whole, parts = single_run["results"][task], sharded["results"][task]
        assert parts.keys() == whole.keys(), task
        for key, value in whole.items():
            if key.split(",")[0] in EXACT:
                assert parts[key] == value, (task, key)
        assert parts["sample_len"] == whole["sample_len"] == single_run["n-samples"][task]["effective"]
        # the gathered samples are the same documents, each scored the same way
        by_doc = {s["doc_id"]: s for s in single_run["samples"][task]}
        gathered = sharded["samples"][task]
        assert sorted(s["doc_id"] for s in gathered) == sorted(by_doc)
        for s in gathered:
            ref = by_doc[s["doc_id"]]
            assert repr(s["scores"]) == repr(ref["scores"])
            assert [s[m] for m in ("rank_acc", "rank_acc_norm", "rank_acc_bytes", "invalid")] == [
                ref[m] for m in ("rank_acc", "rank_acc_norm", "rank_acc_bytes", "invalid")
            ]
    demo = single_run["results"]["rankacc_demo"]
    assert demo["invalid,none"] > 0  # the fake backend's NaNs reached the metrics
    assert "rank_acc_norm,none" in demo  # token counts came through the harness's wrapper
