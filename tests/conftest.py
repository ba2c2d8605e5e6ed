"""Shared fixtures: the tiny offline model and a local mirror of the hub sources.

``tiny_model_dir``: a tiny random Llama + byte-level tokenizer
(:func:`tests.helpers.tiny_model.make_tiny_model`), built once per session.

``hub_mirror``: a folder laid out for ``RANKACC_DATA_DIR``
(``<dir>/<source>/<split>.jsonl``, ``<dir>/alpaca_farm/<hub file>``) with a
few hand-written rows in each dataset's own hub schema, so that every
``rankacc_*`` task runs offline.

``offline_env``: the environment for ``lm_eval`` subprocesses (hub offline,
one OpenMP thread); ``torch_one_thread``: the same for in-process torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.tiny_model import make_tiny_model

# ------------------------------------------------------------------ hh-rlhf rows
# Full transcripts; prompt = up to the last "\n\nAssistant:", response = the rest.
HH_RLHF_TEST = [
    {
        "chosen": "\n\nHuman: What is the capital of France?\n\nAssistant: The capital of France is Paris.",
        "rejected": "\n\nHuman: What is the capital of France?\n\nAssistant: I don't know, maybe Berlin.",
    },
    {
        "chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Do you want it soft or hard?"
        "\n\nHuman: Hard, please.\n\nAssistant: Boil it for about ten minutes, then cool it in cold water.",
        "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: Do you want it soft or hard?"
        "\n\nHuman: Hard, please.\n\nAssistant: Put it in the microwave for an hour.",
    },
    {
        "chosen": "\n\nHuman: Say something nice.\n\nAssistant: You are doing a great job today!",
        "rejected": "\n\nHuman: Say something nice.\n\nAssistant: No.",
    },
    {  # non-ASCII text survives byte counts and tokenization
        "chosen": "\n\nHuman: Name a French pastry.\n\nAssistant: A croissant, or a pain au chocolat \u2013 d\u00e9licieux.",
        "rejected": "\n\nHuman: Name a French pastry.\n\nAssistant: Pizza.",
    },
]
HH_RLHF_TRAIN = [
    {
        "chosen": "\n\nHuman: What is two plus two?\n\nAssistant: Two plus two is four.",
        "rejected": "\n\nHuman: What is two plus two?\n\nAssistant: Two plus two is five.",
    },
    {
        "chosen": "\n\nHuman: Can you help me relax?\n\nAssistant: Try a slow breath in, and a slower breath out.",
        "rejected": "\n\nHuman: Can you help me relax?\n\nAssistant: Relaxing is a waste of time.",
    },
    {  # transcripts differ before the last assistant turn: dropped (and counted) by the converter
        "chosen": "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?",
        "rejected": "\n\nHuman: Hey.\n\nAssistant: What do you want?",
    },
]

# ------------------------------------------------------------------ alpaca_farm rows
# One row per (pair, rater); preference 1 or 2 names output_1 / output_2.
_I1 = "Give three tips for staying healthy."
_GOOD1 = "Eat a balanced diet, exercise regularly and get enough sleep."
_BAD1 = "Eat only sweets."
_I2 = "What is the capital of Germany?"
_A2 = "The capital of Germany is Berlin."
_B2 = "Berlin is the capital of Germany."
_I3 = "Translate 'cat' into French."
_GOOD3 = "'Cat' in French is 'chat'."
_BAD3 = "'Cat' in French is 'hund'."
ALPACA_FARM = [
    # pair 1: three raters, 2 : 1 for the good answer; the third lists the pair swapped
    {"instruction": _I1, "input": "", "output_1": _GOOD1, "output_2": _BAD1, "preference": 1, "annotator_index": 0},
    {"instruction": _I1, "input": "", "output_1": _GOOD1, "output_2": _BAD1, "preference": 2, "annotator_index": 1},
    {"instruction": _I1, "input": "", "output_1": _BAD1, "output_2": _GOOD1, "preference": 2, "annotator_index": 2},
    # pair 2: a human tie (1 : 1), the second vote given on the swapped listing
    {"instruction": _I2, "input": "", "output_1": _A2, "output_2": _B2, "preference": 1, "annotator_index": 0},
    {"instruction": _I2, "input": "", "output_1": _B2, "output_2": _A2, "preference": 1, "annotator_index": 1},
    # pair 3: listed with the worse output first, both raters prefer output_2
    {"instruction": _I3, "input": "", "output_1": _BAD3, "output_2": _GOOD3, "preference": 2.0, "annotator_index": 0},
    {"instruction": _I3, "input": "", "output_1": _BAD3, "output_2": _GOOD3, "preference": 2, "annotator_index": 3},
]
ALPACA_FARM_FILE = "alpaca_farm_human_crossannotations.json"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="session", autouse=True)
def samples_cache_folder(tmp_path_factory) -> Path:
    """The samples cache (``outputs/cache.py``) of every test and its subprocesses in a session folder, not
    the user's ``~/.cache``."""
    folder = tmp_path_factory.mktemp("samples_cache")
    os.environ.setdefault("LM_EVAL_RANKACC_SAMPLES_CACHE", str(folder))  # "off" runs the suite without it
    return folder


@pytest.fixture(scope="session")
def torch_one_thread():
    """One torch intra-op thread for in-process model runs. The tiny model
    gains nothing from more, and on a small shared machine two OpenMP threads
    stall at every barrier while another process holds a core (a forward pass
    of the tiny model then takes ~0.25 s instead of ~1 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, torch_one_thread) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def package_task_splits() -> dict[str, set[str]]:
    """{source: the splits the package's ``rankacc_*`` task YAMLs read}."""
    import yaml

    from lm_eval_rankacc import tasks_dir

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # ignore !function
    out: dict[str, set[str]] = {}
    for path in sorted(tasks_dir().rglob("rankacc_*.yaml")):
        kwargs = (yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}).get("dataset_kwargs") or {}
        if "source" in kwargs and "split" in kwargs:
            out.setdefault(kwargs["source"], set()).add(kwargs["split"])
    return out


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory) -> Path:
    """``RANKACC_DATA_DIR`` for every packaged task: the hh-rlhf and Alpaca
    Farm rows above, plus the rows of ``preference_rows`` (the sources added
    with the multi-response tasks) where that module exists. A split that a
    packaged task reads but has no rows of its own gets its source's first
    split's rows, so that ``lm_eval --tasks 'rankacc_*'`` runs offline."""
    root = tmp_path_factory.mktemp("hub-mirror")
    splits: dict[str, dict[str, list]] = {"hh_rlhf": {"test": HH_RLHF_TEST, "train": HH_RLHF_TRAIN}}
    try:
        from tests.helpers import preference_rows
    except ImportError:
        preference_rows = None
    for source, (split, rows) in getattr(preference_rows, "MIRROR", {}).items():
        splits.setdefault(source, {}).setdefault(split, rows)
    for source, needed in package_task_splits().items():
        if source in splits:
            first = next(iter(splits[source].values()))
            for split in sorted(needed):
                splits[source].setdefault(split, first)
    for source, by_split in splits.items():
        for split, rows in by_split.items():
            _write_jsonl(root / source / f"{split}.jsonl", rows)
    (root / "alpaca_farm").mkdir()
    (root / "alpaca_farm" / ALPACA_FARM_FILE).write_text(
        json.dumps(ALPACA_FARM, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return root


@pytest.fixture(scope="session")
def offline_env() -> dict[str, str]:
    """Environment for lm_eval subprocesses: no hub access, quiet tokenizers."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",  # see torch_one_thread
        MKL_NUM_THREADS="1",
    )
    env.pop("LM_EVAL_RANKACC_AUTOLOAD", None)
    env.pop("RANKACC_DATA_DIR", None)
    return env


@pytest.fixture()
def parallel_reads(monkeypatch):
    """A function that switches on parallel.map_in_processes' parallel path for
    any size on 2 cores and returns the list of the worker counts of every
    process pool it starts (so a test sees that it forked)."""
    from lm_eval_rankacc.outputs import parallel

    def switch_on() -> list:
        forked: list = []
        real_pool = parallel.ProcessPoolExecutor

        def spy(*args, **kwargs):
            forked.append(kwargs.get("max_workers"))
            return real_pool(*args, **kwargs)

        monkeypatch.setattr(parallel, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(parallel, "ProcessPoolExecutor", spy)
        monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
        return forked

    return switch_on
