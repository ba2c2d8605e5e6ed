"""``rankacc sft --sft_all_turns``: train on every assistant turn of the
preferred transcript, as the released SFT does, not only on its final
response (this project's default).

The released ``sft.py`` (its README command: ``--dataset_text_field=chosen
--instruction_template="Human:" --response_template="Assistant:"``, TRL's
``DataCollatorForCompletionOnlyLM``) trains on the tokens after each
``Assistant:`` of HH-RLHF's ``chosen`` transcript up to the next
``Human:``. Here the prompt of a document is that transcript up to its last
``\\n\\nAssistant:`` (:mod:`lm_eval_rankacc.sources.hh_rlhf`), so the earlier
assistant turns are inside the prompt: :func:`assistant_spans` finds their
characters (from the end of each ``\\n\\nAssistant:`` header to the next
``\\n\\nHuman:`` / ``\\n\\nAssistant:`` header), and :func:`turn_masks` marks
the prompt tokens that lie wholly inside one of them (through the fast
tokenizer's offsets, on the very token ids lm-eval's tokenization gives,
:mod:`.tokens`). Those tokens are trained on besides the final response;
the headers, the human turns and the blank lines between turns are not (the
released collator also trains on the blank line that ends an assistant
turn). A token that crosses a turn's edge is not trained on and is counted.
Prompts without such headers (the other sources) have no earlier turn: only
the final response is trained on.
"""

from __future__ import annotations

import re

from lm_eval_rankacc.core.errors import TrainingDataError
from lm_eval_rankacc.sources.hh_rlhf import ASSISTANT

#: A turn header of an HH-RLHF transcript.
HEADER = re.compile(r"\n\n(?:Human|Assistant):")


def assistant_spans(prompt: str) -> list[tuple[int, int]]:
    """The character spans ``[start, end)`` of the assistant turns inside a
    prompt: after each ``\\n\\nAssistant:`` header, up to the next header
    (the final, empty header of the prompt gives no span)."""
    heads = list(HEADER.finditer(prompt))
    spans = []
    for k, head in enumerate(heads):
        if head.group(0) != ASSISTANT:
            continue
        end = heads[k + 1].start() if k + 1 < len(heads) else len(prompt)
        if end > head.end():
            spans.append((head.end(), end))
    return spans


def turn_masks(tokenizer, contexts: list[str], ids: list[list[int]]) -> tuple[list[list[bool]], int]:  # noqa: ANN001
    """(per prompt, per token of ``ids``: inside an assistant turn?, how many
    tokens crossed a turn's edge). ``ids`` are the prompts' token ids as
    :func:`.tokens.encode` gave them, cut from the left when too long
    (:func:`.tokens.truncate`): the marks are cut the same way (checked:
    the same tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TrainingDataError("--sft_all_turns needs a fast tokenizer (its character offsets find the turns)")
    if not contexts:
        return [], 0
    enc = tokenizer(contexts, add_special_tokens=True, return_offsets_mapping=True)
    masks, crossing = [], 0
    for text, kept, whole, offsets in zip(contexts, ids, enc["input_ids"], enc["offset_mapping"]):
        cut = len(whole) - len(kept)
        if cut < 0 or list(whole[cut:]) != list(kept):
            raise TrainingDataError("--sft_all_turns: the tokenizer's offsets come with other tokens than "
                                    "the prompt's (a tokenizer that is not deterministic?)")
        spans = assistant_spans(text)
        mask = []
        for start, end in offsets[cut:]:
            inside = end > start and any(a <= start and end <= b for a, b in spans)
            crossing += end > start and not inside and any(start < b and a < end for a, b in spans)
            mask.append(inside)
        masks.append(mask)
    return masks, crossing
