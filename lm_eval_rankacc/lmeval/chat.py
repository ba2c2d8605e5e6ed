"""Chat-template scoring: the requests of a rankacc document under
lm-eval's ``--apply_chat_template`` (docs/chat.md); the task classes
(:mod:`lm_eval_rankacc.lmeval.tasks`) use it only under that flag, so
without it every request, metric and logged sample is what the plain task
gives. Two differences:

- The context is the model's template applied to the document's messages
  with the generation prompt, nothing else:
  ``tokenizer.apply_chat_template(messages, add_generation_prompt=True,
  tokenize=False)``. The messages are ``--system_instruction`` as the system
  message (when given), then the prompt's turns: a source that knows its
  transcript format splits it (``chat_messages(prompt)`` of the source
  module: HH-RLHF's ``Human`` / ``Assistant`` turns become ``user`` /
  ``assistant`` messages), any other prompt is one ``user`` message.
  (lm-eval alone would wrap the whole raw transcript as one user message.)
- The continuation is the response itself, with no joining space; with the
  task option ``chat_end_of_turn: true`` (``--metadata`` or the task's
  ``metadata``) it is the response followed by the end-of-turn marker the
  template writes after an assistant message (the template's text after the
  response, trailing whitespace left out), the same marker for every
  response. Default: not scored, as the paper scores the response only.

``n_tokens`` and ``n_bytes`` count what the backend scored
(:func:`lm_eval_rankacc.lmeval.metrics.scored_text`: lm-eval moves the context's
trailing whitespace, e.g. the newline after a ChatML ``assistant`` header,
to the front of the continuation). A model without a chat template, or a
template that does not write the response verbatim, is a
:class:`~lm_eval_rankacc.core.errors.UsageError` naming ``--apply_chat_template``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval_rankacc.core.errors import UsageError
from lm_eval_rankacc.sources import get_source

FLAG = "--apply_chat_template"
#: The task option (metadata key) that scores the end-of-turn marker too.
END_OF_TURN = "chat_end_of_turn"

Messages = list[dict[str, str]]


def document_messages(doc: dict[str, Any], source: str | None, system: str | None = None) -> Messages:
    """The chat messages of a document: the system message, then the prompt's
    turns as the source splits them (one user message if it does not)."""
    split = getattr(get_source(source), "chat_messages", None) if source else None
    turns = split(doc["prompt"]) if split else [{"role": "user", "content": doc["prompt"]}]
    return ([{"role": "system", "content": system}] if system else []) + turns


def _tokenizer(render: Callable) -> Any:
    """The tokenizer behind lm-eval's ``apply_chat_template`` callable (a bound
    method of the model), or None for backends that keep it elsewhere."""
    return getattr(getattr(render, "__self__", None), "tokenizer", None)


def _no_template(model: str) -> UsageError:
    return UsageError(
        f"{FLAG}: {model} has no chat template; run without {FLAG} (the raw transcript format), "
        "or use a model whose tokenizer defines one"
    )


class ChatFormat:
    """The requests of rankacc documents under ``--apply_chat_template``:
    ``render`` is lm-eval's callable (the model's ``apply_chat_template``)."""

    def __init__(self, render: Callable | None, system: str | None, source: str | None, end_of_turn: bool):
        if render is None:
            raise _no_template("this model backend")
        tokenizer = _tokenizer(render)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None) is None:
            raise _no_template(f"the tokenizer {getattr(tokenizer, 'name_or_path', '') or '(unnamed)'}")
        if end_of_turn and tokenizer is None:
            raise UsageError(f"{END_OF_TURN}: this backend exposes no tokenizer to render the end-of-turn marker")
        self.render, self.tokenizer = render, tokenizer
        self.system, self.source, self.end_of_turn = system, source, end_of_turn

    def messages(self, doc: dict[str, Any]) -> Messages:
        return document_messages(doc, self.source, self.system)

    def context(self, doc: dict[str, Any]) -> str:
        try:
            return self.render(self.messages(doc), add_generation_prompt=True)
        except ValueError as err:  # transformers: "Cannot use chat template functions ... not set"
            if "chat template" in str(err) or "chat_template" in str(err):
                raise _no_template("this model") from err
            raise

    def marker(self, doc: dict[str, Any], context: str, response: str) -> str:
        """The template's text after ``response`` as the final assistant message,
        without trailing whitespace."""
        convo = self.messages(doc) + [{"role": "assistant", "content": response}]
        full = self.tokenizer.apply_chat_template(convo, add_generation_prompt=False, tokenize=False)
        if not full.startswith(context + response):
            raise UsageError(
                f"{END_OF_TURN}: document {doc['id']}: the chat template does not write the assistant "
                "message after its generation prompt verbatim, so its end-of-turn marker cannot be found"
            )
        return full[len(context) + len(response):].rstrip()

    def requests(self, doc: dict[str, Any], context: str | None = None) -> list[tuple[str, str]]:
        """(context, continuation) of each response of ``doc``."""
        context = self.context(doc) if context is None else context
        if not self.end_of_turn:
            return [(context, r) for r in doc["responses"]]
        markers = {self.marker(doc, context, r) for r in doc["responses"]}
        if len(markers) != 1:
            raise UsageError(
                f"{END_OF_TURN}: document {doc['id']}: the chat template ends the responses' turns "
                f"differently ({sorted(markers)}), so no marker is scored identically for every response"
            )
        eot = markers.pop()
        return [(context, r + eot) for r in doc["responses"]]
