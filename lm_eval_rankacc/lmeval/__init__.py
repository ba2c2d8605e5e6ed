"""The lm-eval integration: the task classes, the ``custom_dataset`` every
rankacc task loads its documents with, the per-document metrics, the window
rule and token counts of its loglikelihood requests, W&B sample tables, and
the ``hf-prefix`` backend (:mod:`.models`)."""
