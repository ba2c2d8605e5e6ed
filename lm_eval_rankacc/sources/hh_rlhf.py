"""Anthropic HH-RLHF (Bai et al., 2022), hub dataset ``Anthropic/hh-rlhf`` at the
revision pinned in ``HUB``: splits ``test`` and ``train`` of the default
configuration (all subsets), rows ``{"chosen": str, "rejected": str}``, each a
full ``\\n\\nHuman: ...\\n\\nAssistant: ...`` transcript.

prompt = the transcript up to and including the last ``\\n\\nAssistant:``;
responses = the final assistant turns of chosen and rejected (the single space
after ``Assistant:`` removed, so prompt + " " + response is the transcript);
ranks = [1, 2]; document id = ``<split>/<row>``. Pairs whose transcripts
differ before the last assistant turn are not a pair of responses to one
prompt: they are dropped and counted. A transcript without an
``\\n\\nAssistant:`` turn is an error naming the row and the field.

Chat messages (:func:`chat_messages`, used under ``--apply_chat_template``):
the prompt's ``Human:`` turns are ``user`` messages and its ``Assistant:``
turns ``assistant`` messages (one space after the colon removed), up to the
final assistant header, which is the template's generation prompt; text
before the first turn is a ``user`` message; consecutive turns of one speaker
are joined with a blank line, so roles alternate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from lm_eval_rankacc.core.schema import RowError, get_field, require_str
from lm_eval_rankacc.sources import Conversion, HubDataset, numbered
from lm_eval_rankacc.sources.common import DROP_EMPTY, document, has_empty_response

HUB = HubDataset(path="Anthropic/hh-rlhf", revision="09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa")
#: The loader may convert big splits in two passes (see :mod:`lm_eval_rankacc.sources`).
TWO_PASS = True

ASSISTANT = "\n\nAssistant:"
DROP_PREFIX = "transcripts differ before the last assistant turn"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def split_transcript(text: str, row: Any, field: str) -> tuple[str, str]:
    """(prompt, final assistant response) of one transcript."""
    cut = text.rfind(ASSISTANT)
    if cut < 0:
        raise RowError(row, field, f"has no {ASSISTANT!r} turn")
    prompt = text[: cut + len(ASSISTANT)]
    response = text[cut + len(ASSISTANT) :]
    return prompt, response[1:] if response.startswith(" ") else response


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """The turns of a prompt (a transcript up to its last ``\n\nAssistant:``)
    as alternating chat messages, by the rule of the module docstring."""
    parts = _TURN.split(prompt)
    turns = [("user", parts[0])] if parts[0] else []
    for speaker, text in zip(parts[1::2], parts[2::2]):
        turns.append((_ROLES[speaker], text[1:] if text.startswith(" ") else text))
    if turns and turns[-1][0] == "assistant" and not turns[-1][1]:
        turns.pop()  # the final assistant header: the generation prompt
    messages: list[dict[str, str]] = []
    for role, text in turns:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def convert(rows: Iterable[dict[str, Any]], split: str, **_: Any) -> Conversion:
    out = Conversion.of(rows)
    for i, record in numbered(rows):
        chosen = require_str(get_field(record, i, "chosen"), i, "chosen")
        rejected = require_str(get_field(record, i, "rejected"), i, "rejected")
        prompt_w, response_w = split_transcript(chosen, i, "chosen")
        prompt_l, response_l = split_transcript(rejected, i, "rejected")
        if prompt_w != prompt_l:
            out.dropped[DROP_PREFIX] += 1
            continue
        if has_empty_response((response_w, response_l)):
            out.dropped[DROP_EMPTY] += 1
            continue
        out.add(document(out.light, f"{split}/{i}", prompt_w, [response_w, response_l], [1, 2], row=i), i)
    return out
