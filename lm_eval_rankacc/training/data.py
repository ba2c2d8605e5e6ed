"""Training data: any rankacc task's documents, split into preference pairs and tokenized.

Documents come from :func:`lm_eval_rankacc.loading.documents.documents`, the code the
eval tasks use, so a malformed row stops training with the same error (naming
the task, the row and the field) and rows dropped by a documented rule are
counted the same way. Name a task (``rankacc_hh_rlhf_train``, a YAML-only task
file, ...) and its ``dataset_kwargs`` say the source and split; ``data_files``
replaces the download with local files in the source's own schema (without a
task: files in the common schema, ``prompt`` / ``responses`` / ``ranks``).

Pairs (:func:`documents_to_pairs`): every strictly ordered pair of a document
(for n = 2 the pair itself; for n > 2 the pairs whose order Def. A.8's exact
match checks, our choice: the paper trains on HH-RLHF pairs only); pairs the
humans tied are skipped and counted.

Validation (:func:`load_splits`), as in the paper (App. D.1): half of the
test split (``eval_fraction`` of its documents; which half is ours,
``split_seed`` 0). A task whose split
is not ``test`` validates on the package task of the same source and split
``test`` when there is one (``rankacc_hh_rlhf_train`` ->
``rankacc_hh_rlhf_test``); otherwise ``eval_fraction`` of the training
documents is held out (whole documents: no document has pairs in both).
``eval_task`` or ``eval_data_files`` name the validation data explicitly.

Tokenization (:func:`encode_pairs`) is lm-eval's ``hf`` backend's
(``TemplateLM._encode_pair``): context = prompt, continuation = " " + response
(trailing whitespace of the prompt moved to the continuation), the continuation
tokens are ``encode(context + continuation)[len(encode(context)):]`` and the
model reads ``encode(context) + continuation``; special tokens as the
tokenizer adds them by default. So a checkpoint's log-probabilities here are
the ones ``lm_eval --tasks 'rankacc_*'`` computes (up to truncation).

Truncation (:func:`truncate`), as in the DPO reference code: when the prompt
plus the longer response exceed ``max_length`` tokens, the prompt is cut from
the left to ``max_prompt_length`` tokens; if that is still too long, both
responses are cut from the right to fit. Both responses of a pair always see
the same prompt.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_rankacc.loading import documents as loader

from lm_eval_rankacc import tasks_dir

from lm_eval_rankacc.core import theory
from lm_eval_rankacc.core.errors import TrainingDataError

log = logging.getLogger("lm_eval_rankacc.training")

#: The ``task`` name used in messages when only data_files (in the common schema) are given.
FILES_TASK = "rankacc training data"
SKIP_TIES = "pairs the humans tied (no preference to learn)"


# ----------------------------------------------------------------- option rules
# Each rule is written once, here, and checked both where the data is read
# and by the options' ``__post_init__`` (:mod:`.config`), so that a bad value
# stops a run before any model is loaded.
def check_data_given(task: str | None, data_files: Any) -> None:
    """Training data needs a task or data files."""
    if not task and not data_files:
        raise TrainingDataError("no training data: give --task (a rankacc task) or --data_files")


def check_lengths(max_length: int, max_prompt_length: int) -> None:
    """:func:`truncate` needs 1 <= max_prompt_length < max_length."""
    if not 1 <= max_prompt_length < max_length:
        raise TrainingDataError(
            f"need 1 <= max_prompt_length < max_length, got {max_prompt_length} and {max_length}"
        )


def check_eval_fraction(eval_fraction: float) -> None:
    """A share of documents: in (0, 1]."""
    if not 0.0 < eval_fraction <= 1.0:
        raise TrainingDataError(f"eval_fraction must be in (0, 1], got {eval_fraction!r}")


def log_skipped(what: str, counts: Counter) -> None:
    """One warning per reason documents or pairs were skipped."""
    for reason, n in sorted(counts.items()):
        log.warning("%s: skipped %d %s", what, n, reason)


# ----------------------------------------------------------------- task lookup
def _yaml_load(path: Path) -> dict[str, Any]:
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !function tags
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    return data if isinstance(data, dict) else {}


def package_tasks() -> dict[str, dict[str, Any]]:
    """{task name: its dataset_kwargs} for the package's ``rankacc_*`` tasks."""
    out = {}
    for path in sorted(tasks_dir().rglob("rankacc_*.yaml")):
        config = _yaml_load(path)
        kwargs = config.get("dataset_kwargs")
        if isinstance(config.get("task"), str) and isinstance(kwargs, dict) and "source" in kwargs:
            out[config["task"]] = dict(kwargs)
    return out


def task_kwargs(task: str) -> dict[str, Any]:
    """The ``load_docs`` keyword arguments of a task: a package task name, or
    the path of a task YAML (e.g. one built on ``_fields_template_yaml``)."""
    tasks = package_tasks()
    if task in tasks:
        kwargs = dict(tasks[task])
    elif task.endswith((".yaml", ".yml")) and Path(task).is_file():
        config = _yaml_load(Path(task))
        kwargs = dict(config.get("dataset_kwargs") or {})
        kwargs.setdefault("source", "fields")
        kwargs.setdefault("task", config.get("task") or Path(task).stem)
    else:
        raise TrainingDataError(
            f"unknown task {task!r}: name a package task ({', '.join(tasks)}) or a task YAML file"
        )
    kwargs.setdefault("task", task)
    kwargs.setdefault("split", "test")
    return kwargs


def sibling_test_task(task: str) -> str | None:
    """The package task reading the same source and options from split ``test``
    (the paper validates on half of the test split), or None."""
    tasks = package_tasks()
    if task not in tasks or tasks[task].get("split") == "test":
        return None
    mine = {k: v for k, v in tasks[task].items() if k not in ("task", "split")}
    for name, kwargs in tasks.items():
        if kwargs.get("split") == "test" and {k: v for k, v in kwargs.items() if k not in ("task", "split")} == mine:
            return name
    return None


def load_documents(
    task: str | None = None,
    data_files: Any = None,
    split: str | None = None,
    sample_size: int = 0,
    seed: int = 0,
) -> tuple[str, list[dict[str, Any]]]:
    """(task name, documents in the common schema) through the eval tasks' loader."""
    check_data_given(task, data_files)
    if task:
        kwargs = task_kwargs(task)
    else:
        kwargs = {"source": "demo", "task": FILES_TASK, "split": "train"}  # the common schema
    if split:
        kwargs["split"] = split
    if data_files:
        kwargs["data_files"] = data_files
    try:
        docs = loader.documents(sample_size=sample_size, seed=seed, **kwargs)
    except loader.TaskDataError as err:
        raise TrainingDataError(str(err)) from None
    return kwargs["task"], docs


# ----------------------------------------------------------------- pairs
@dataclass(frozen=True)
class Pair:
    """One preference pair of a document: ``chosen`` is ranked strictly above ``rejected``."""

    pair_id: str
    doc_id: str
    prompt: str
    chosen: str
    rejected: str
    #: positions of ``chosen`` and ``rejected`` among the document's responses
    at: tuple[int, int] = (0, 1)


def documents_to_pairs(docs: list[dict[str, Any]]) -> tuple[list[Pair], Counter]:
    """Every human-strictly-ordered pair of every document (ties skipped and counted).

    A two-response document gives one pair whose id is the document id; a
    larger one gives ``<doc id>:<i>><j>`` for response i preferred to j.
    """
    pairs: list[Pair] = []
    skipped: Counter = Counter()
    for doc in docs:
        ranks, responses = list(doc["ranks"]), list(doc["responses"])
        n = len(ranks)
        tied = sum(1 for i in range(n) for j in range(i + 1, n) if ranks[i] == ranks[j])
        if tied:
            skipped[SKIP_TIES] += tied
        for i, j in theory.strictly_ordered_pairs(ranks):
            pid = doc["id"] if n == 2 else f"{doc['id']}:{i}>{j}"
            pairs.append(Pair(pid, doc["id"], doc["prompt"], responses[i], responses[j], (i, j)))
    return pairs, skipped


def preferred_responses(docs: list[dict[str, Any]]) -> tuple[list[tuple[str, str, str]], Counter]:
    """(example id, prompt, response) for the best-ranked responses of each
    document (SFT on the preferred responses); documents whose responses are
    all tied have no preferred response and are skipped and counted."""
    out, skipped = [], Counter()
    for doc in docs:
        ranks = list(doc["ranks"])
        if len(set(ranks)) == 1:
            skipped["documents whose responses are all tied (no preferred response)"] += 1
            continue
        best = min(ranks)
        seen = set()
        for k, (rank, response) in enumerate(zip(ranks, doc["responses"])):
            if rank == best and response not in seen:
                seen.add(response)
                out.append((doc["id"] if ranks.count(best) == 1 else f"{doc['id']}:{k}", doc["prompt"], response))
    return out, skipped


# ----------------------------------------------------------------- splits
@dataclass
class Splits:
    """Training and validation documents, and where they came from."""

    task: str
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    validation_source: str
    notes: list[str] = field(default_factory=list)


def _share(n: int, fraction: float) -> int:
    return max(1, min(n, int(round(n * fraction)))) if n else 0


def _content_key(doc: dict[str, Any]) -> tuple:
    return (doc["prompt"], tuple(doc["responses"]))


def load_splits(
    task: str | None,
    data_files: Any = None,
    split: str | None = None,
    train_sample_size: int = 0,
    eval_task: str | None = "auto",
    eval_data_files: Any = None,
    eval_split: str | None = None,
    eval_fraction: float = 0.5,
    split_seed: int = 0,
) -> Splits:
    """Training and validation documents (see the module docstring for the rules)."""
    check_eval_fraction(eval_fraction)
    name, train = load_documents(task, data_files, split, train_sample_size, split_seed)
    holdout = eval_task in (None, "", "none", "holdout")
    if eval_task == "auto":
        if eval_data_files:
            eval_task, holdout = task, False  # the training task's converter reads the files
        elif data_files or not task:
            holdout = True
        else:
            eval_task = sibling_test_task(task)
            holdout = eval_task is None
    elif holdout and eval_data_files:
        eval_task, holdout = task, False
    if not holdout:
        ev_name, docs = load_documents(eval_task, eval_data_files, eval_split, 0, split_seed)
        keep = loader.sample_indices(len(docs), _share(len(docs), eval_fraction), split_seed)
        validation = [docs[i] for i in keep]
        where = ev_name + (f" ({eval_data_files})" if eval_data_files else "")
        source = f"{len(validation)} of the {len(docs)} documents of {where} (seed {split_seed})"
        notes = []
        seen = {_content_key(d) for d in train}
        repeated = sum(_content_key(d) in seen for d in validation)
        if repeated:
            notes.append(f"{repeated} validation document(s) are also training documents (same prompt and responses)")
        return Splits(name, train, validation, source, notes)
    if len(train) < 2:
        raise TrainingDataError(f"{name}: {len(train)} document(s): too few to hold out a validation set")
    n_val = min(len(train) - 1, _share(len(train), eval_fraction))
    val_idx = set(loader.sample_indices(len(train), n_val, split_seed))
    validation = [d for i, d in enumerate(train) if i in val_idx]
    rest = [d for i, d in enumerate(train) if i not in val_idx]
    source = f"{len(validation)} of the {len(train)} training documents of {name} held out (seed {split_seed})"
    return Splits(name, rest, validation, source)


# ----------------------------------------------------------------- tokenization
def _split_context(prompt: str, continuation: str) -> tuple[str, str]:
    """lm-eval's rule: trailing whitespace of the context moves to the continuation."""
    n_spaces = len(prompt) - len(prompt.rstrip())
    if n_spaces:
        return prompt[:-n_spaces], prompt[-n_spaces:] + continuation
    return prompt, continuation


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=True)["input_ids"]


def encode_pairs(tokenizer, prompts: list[str], responses: list[list[str]]) -> tuple[list[list[int]], list[list[list[int]]]]:
    """(prompt tokens, [response tokens of each response]) per prompt, as lm-eval's
    ``hf`` backend splits context and continuation (prompt + " " + response)."""
    contexts, wholes, shape = [], [], []
    for prompt, resps in zip(prompts, responses):
        ctx = None
        for r in resps:
            c, cont = _split_context(prompt, loader.JOIN + r)
            ctx = c
            wholes.append(c + cont)
        contexts.append(ctx if ctx is not None else prompt)
        shape.append(len(resps))
    ctx_ids = _encode(tokenizer, contexts)
    whole_ids = _encode(tokenizer, wholes)
    out, k = [], 0
    for ids, n in zip(ctx_ids, shape):
        conts = [list(whole_ids[k + j][len(ids):]) for j in range(n)]
        k += n
        out.append(conts)
    return [list(i) for i in ctx_ids], out


def truncate(
    prompt: list[int], responses: list[list[int]], max_length: int, max_prompt_length: int
) -> tuple[list[int], list[list[int]], bool]:
    """(prompt, responses, truncated?): the prompt cut from the left to
    ``max_prompt_length`` when prompt + the longest response exceed
    ``max_length``; then the responses cut from the right to fit."""
    longest = max((len(r) for r in responses), default=0)
    if len(prompt) + longest <= max_length:
        return prompt, responses, False
    if len(prompt) > max_prompt_length:
        prompt = prompt[-max_prompt_length:]
    room = max_length - len(prompt)
    return prompt, [r[:room] for r in responses], True


@dataclass
class Encoded:
    """Token ids of a list of pairs (or of SFT examples: one response each)."""

    ids: list[str]
    prompt: list[list[int]]
    responses: list[list[list[int]]]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def encode(
    tokenizer,
    ids: list[str],
    prompts: list[str],
    responses: list[list[str]],
    max_length: int,
    max_prompt_length: int,
    chunk: int = 2048,
) -> Encoded:
    """Tokenize and truncate, in chunks (the fast tokenizers batch well)."""
    check_lengths(max_length, max_prompt_length)
    out = Encoded(list(ids), [], [])
    for start in range(0, len(prompts), chunk):
        p_ids, r_ids = encode_pairs(tokenizer, prompts[start:start + chunk], responses[start:start + chunk])
        for p, rs in zip(p_ids, r_ids):
            if not p:
                raise TrainingDataError(f"example {ids[start]!r}...: the prompt encodes to no token")
            p, rs, cut = truncate(p, rs, max_length, max_prompt_length)
            out.prompt.append(p)
            out.responses.append(rs)
            out.truncated += cut
    return out


def fingerprint(*parts: Any) -> str:
    """A stable hash of token ids and options (for the reference log-prob cache)."""
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Encoded):
            for i, p, rs in zip(part.ids, part.prompt, part.responses):
                h.update(str(i).encode())
                h.update(np.asarray(p, dtype=np.int64).tobytes())
                for r in rs:
                    h.update(b"|")
                    h.update(np.asarray(r, dtype=np.int64).tobytes())
                h.update(b"#")
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()

