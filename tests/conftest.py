"""Shared fixtures: the tiny offline model and a local mirror of the hub sources.

``tiny_model_dir``: a tiny random Llama + byte-level tokenizer
(:func:`tiny_model.make_tiny_model`), built once per session.

``hub_mirror``: a folder laid out for ``RANKACC_DATA_DIR``
(``<dir>/<source>/<split>.jsonl``, ``<dir>/alpaca_farm/<hub file>``) with a
few hand-written rows in each dataset's own hub schema, so that every
``rankacc_*`` task runs offline.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # tiny_model / openai_server are plain modules here
    sys.path.insert(0, str(TESTS_DIR))

from tiny_model import make_tiny_model  # noqa: E402

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

#: Expected document counts per task with this mirror.
MIRROR_DOCS = {
    "rankacc_hh_rlhf_test": len(HH_RLHF_TEST),
    "rankacc_hh_rlhf_train": len(HH_RLHF_TRAIN) - 1,
    "rankacc_alpaca_farm_val": 2,
    "rankacc_alpaca_farm_val_ties": 3,
}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hub-mirror")
    _write_jsonl(root / "hh_rlhf" / "test.jsonl", HH_RLHF_TEST)
    _write_jsonl(root / "hh_rlhf" / "train.jsonl", HH_RLHF_TRAIN)
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
    )
    env.pop("LM_EVAL_RANKACC_AUTOLOAD", None)
    env.pop("RANKACC_DATA_DIR", None)
    return env
