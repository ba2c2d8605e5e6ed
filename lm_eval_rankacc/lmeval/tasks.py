"""The task classes of every rankacc task (``class:`` in
``tasks/_default_template_yaml`` and ``tasks/_generate_template_yaml``):
lm-eval's own ``ConfigurableTask``, plus the chat format of
:mod:`lm_eval_rankacc.lmeval.chat` under ``--apply_chat_template``."""

from __future__ import annotations

from lm_eval.api.task import ConfigurableTask

from lm_eval_rankacc.core.errors import UsageError
from lm_eval_rankacc.lmeval import metrics
from lm_eval_rankacc.lmeval.chat import END_OF_TURN, FLAG, ChatFormat


class RankAccTask(ConfigurableTask):
    """lm-eval's YAML task, plus the chat format of :mod:`lm_eval_rankacc.lmeval.chat`."""

    def __init__(self, data_dir=None, cache_dir=None, download_mode=None, config: dict | None = None):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(data_dir=data_dir, cache_dir=cache_dir, download_mode=download_mode, config=config)
        self.chat_format: ChatFormat | None = None

    def _option(self) -> bool:
        value = (self.config.metadata or {}).get(END_OF_TURN, False)
        if not isinstance(value, bool):
            raise UsageError(f"{self.config.task}: metadata '{END_OF_TURN}' must be true or false, got {value!r}")
        return value

    def build_all_requests(self, *args, **kwargs) -> None:
        self.chat_format = None
        if kwargs.get("apply_chat_template"):
            source = (self.config.dataset_kwargs or {}).get("source")
            self.chat_format = ChatFormat(kwargs.get("chat_template"), kwargs.get("system_instruction"),
                                   source if isinstance(source, str) else None, self._option())
        return super().build_all_requests(*args, **kwargs)

    def fewshot_context(self, doc, num_fewshot, *args, **kwargs):
        if self.chat_format is None or not kwargs.get("apply_chat_template"):
            return super().fewshot_context(doc, num_fewshot, *args, **kwargs)
        if num_fewshot:
            raise UsageError(f"{self.config.task}: {FLAG} scores rankacc documents zero-shot; drop --num_fewshot")
        return self.chat_format.context(doc)

    def construct_requests(self, doc, ctx, **kwargs):
        instances = super().construct_requests(doc, ctx, **kwargs)
        if self.chat_format is not None and kwargs.get("apply_chat_template"):
            for instance, request in zip(instances, self.chat_format.requests(doc, ctx), strict=True):
                instance.arguments = request
        return instances

    def process_results(self, doc, results):
        if self.chat_format is None:
            return super().process_results(doc, results)
        return metrics.process_results(doc, results, self.chat_format.requests(doc))


class RankAccGenTask(RankAccTask):
    """The generation variant (``generate_until``, tasks/_generate_template_yaml):
    under ``--apply_chat_template`` the context is :class:`ChatFormat`'s (the
    prompt's turns as messages, the generation prompt last), the request is
    lm-eval's own one generation, scored by the task's ``process_results``."""

    def construct_requests(self, doc, ctx, **kwargs):
        return ConfigurableTask.construct_requests(self, doc, ctx, **kwargs)

    def process_results(self, doc, results):
        return ConfigurableTask.process_results(self, doc, results)
