"""Model backends for lm-eval. ``hf-prefix`` is registered lazily (see
``lm_eval_rankacc._autoload``), so importing this package costs nothing."""

#: lm-eval model name -> "module:class", registered into lm-eval's model registry.
MODELS = {"hf-prefix": "lm_eval_rankacc.lmeval.models.prefix:HFPrefixLM"}
