"""W&B sample logging of rankacc tasks (``--wandb_args ... --log_samples``),
through lm-eval's own WandbLogger code (its table builder and sample logging),
with a stand-in for the wandb client: a metric a document does not have is an
empty cell, and the means lm-eval computed are untouched."""

from __future__ import annotations

import json
import sys
import types
from contextlib import contextmanager

import pandas as pd
import pytest

from lm_eval_rankacc.lmeval.wandb_samples import install_wandb_samples, with_every_metric

ROWS = [
    {"id": "two/a", "prompt": "Say hello.", "responses": ["Hello!", "Go away."], "ranks": [1, 2]},
    {"id": "two/b", "prompt": "Name a fruit.", "responses": ["An apple.", "A chair."], "ranks": [1, 2]},
    {"id": "three", "prompt": "Rank these answers.", "responses": ["best", "middle one", "worst of all"], "ranks": [1, 2, 3]},
]


class FakeRun:
    """What the logger calls on a wandb run."""

    def __init__(self):
        self.logged, self.artifacts = [], []

    def log(self, data, step=None):
        self.logged.append(data)

    def log_artifact(self, artifact):
        self.artifacts.append(artifact)


class FakeArtifact:
    def __init__(self, name, type):  # noqa: A002 - wandb's signature
        self.name, self.files = name, {}

    @contextmanager
    def new_file(self, name, mode="w", encoding="utf-8"):
        import io

        buf = io.StringIO()
        yield buf
        self.files[name] = buf.getvalue()


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, tmp_path_factory):
    """lm-eval's results with samples: two pairs and one three-response document."""
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from lm_eval_rankacc import tasks_dir

    data = tmp_path_factory.mktemp("wandb") / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    tm = TaskManager(include_defaults=False, include_path=str(tasks_dir()),
                     metadata={"data_files": str(data), "sample_size": 0})
    lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=2)
    return evaluate(lm=lm, task_dict=tm.load(["rankacc_demo"]), log_samples=True, bootstrap_iters=0)


def logger_for(results, monkeypatch):
    from lm_eval.loggers.wandb_logger import WandbLogger

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Artifact=FakeArtifact))
    logger = WandbLogger.__new__(WandbLogger)  # no wandb.init: a stand-in run
    logger.run, logger.step = FakeRun(), None
    logger.post_init(results)
    logger._get_config()
    return logger


def test_lm_eval_logger_fails_without_the_fill(evaluated, monkeypatch):
    from lm_eval.loggers import wandb_logger

    original = getattr(wandb_logger.WandbLogger._generate_dataset, "__wrapped__",
                       wandb_logger.WandbLogger._generate_dataset)
    monkeypatch.setattr(wandb_logger.WandbLogger, "_generate_dataset", original)
    logger = logger_for(evaluated, monkeypatch)
    with pytest.raises(KeyError, match="pair_acc"):  # what "Logging to W&B failed: 'pair_acc'" hides
        logger.log_eval_samples(evaluated["samples"])


def test_samples_table_logs_with_empty_cells(evaluated, monkeypatch):
    from lm_eval.loggers import wandb_logger

    assert install_wandb_samples(wandb_logger) and install_wandb_samples()  # idempotent
    samples = evaluated["samples"]["rankacc_demo"]
    before = json.dumps(samples, sort_keys=True, default=str)
    logger = logger_for(evaluated, monkeypatch)
    logger.log_eval_samples(evaluated["samples"])
    (table,) = [d["rankacc_demo_eval_results"] for d in logger.run.logged]
    by_id = {s["doc"]["id"]: s for s in samples}
    assert len(table) == 3
    for _, row in table.iterrows():
        sample = by_id[samples[int(row["id"])]["doc"]["id"]]
        assert row["rank_acc"] == sample["rank_acc"]
        if len(sample["doc"]["responses"]) == 3:
            assert row["pair_acc"] == sample["pair_acc"]
        else:
            assert pd.isna(row["pair_acc"]) and "pair_acc" not in sample  # an empty cell
    assert json.dumps(samples, sort_keys=True, default=str) == before  # the samples themselves unchanged
    # the mean lm-eval reported is over the one document that has pair_acc
    assert evaluated["results"]["rankacc_demo"]["pair_acc,none"] == by_id["three"]["pair_acc"]
    assert len(logger.run.artifacts) == 1


def test_fill_touches_only_rankacc_samples():
    config = {"metric_list": [{"metric": "acc"}, {"metric": "pair_acc"}]}
    other = {"doc": {"question": "q"}, "acc": 1.0}
    ours = {"doc": {"id": "x", "prompt": "p", "responses": ["a", "b"], "ranks": [1, 2]}, "acc": 0.0}
    assert with_every_metric([other, ours], config) == [other, {**ours, "pair_acc": None}]


def test_the_hook_installs_the_fill_when_lm_eval_loads_its_wandb_logger():
    import os
    import subprocess

    code = ("import lm_eval.loggers.wandb_logger as w\n"
            "print(getattr(w.WandbLogger._generate_dataset, '_rankacc_wrapped', False))")
    for switch, expected in (("1", "True"), ("0", "False")):
        env = {**os.environ, "LM_EVAL_RANKACC_AUTOLOAD": switch}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == expected, out.stderr
