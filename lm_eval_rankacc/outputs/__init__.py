"""Reading what lm-eval wrote, without lm-eval, torch, transformers or datasets
(the analyses run without them). One job a module, read from the bottom up:

- ``names``: lm-eval's file names (``samples_<task>_<ts>.jsonl``, ``results_<ts>.json``), the newest file of each task.
- ``results``: the results JSON: each rankacc task's aggregates, what decides its documents, the model's identity.
- ``lines``: a samples file's lines, read in blocks, split on newlines only; bytes that are not UTF-8 named.
- ``validation``: the checks of one samples line, by the reference validator and the msgspec fast path alike.
- ``columns``: the compact column store of one task's samples (``TaskSamples``) and the builder that fills it.
- ``samples``: ``read_samples``: one rankacc task's samples file, read by stage; the kinds of lines; dropped documents.
- ``cache``: the samples cache: what ``read_samples`` gives, kept per file while the file is unchanged.
- ``runs``: ``Run`` and ``load_run``: the newest samples file of each task of what names a run.
- ``parallel``: reading runs in forked processes when their samples are big enough to pay for it.
- ``matching``: ``match_documents``: two runs' documents paired by id and ``doc_hash``, never by position.
"""
