"""Leaderboard: many models' rankacc results side by side (the paper's
Figure 1 and Tables 2-5), from lm-eval's own results JSON files
(:mod:`lm_eval_rankacc.outputs.results`). This package builds the table's data;
:mod:`lm_eval_rankacc.report.leaderboard` lays it out. One module a step:

- :mod:`.columns`: the columns, their labels and aliases;
- :mod:`.reading`: every results file of the runs, re-scored under the released convention when asked;
- :mod:`.models`: the newest results file per model, and the rows' labels;
- :mod:`.document_sets`: which models scored the same documents;
- :mod:`.reference`: the reference's idealized accuracy and each model's alignment gap;
- :mod:`.table`: the rows, their order and the runs behind them (:func:`leaderboard`).

A run is an lm-eval ``--output_path`` folder (any backend; one or several
model sub-folders), a model sub-folder, or one results JSON. Per model (the
identity lm-eval recorded: backend, pretrained / model name, revision, dtype,
adapter) and task the newest results file wins; older ones are listed as
superseded. Values are lm-eval's own aggregates and standard errors, never
recomputed, under the default convention ``paper``; ``convention="released"``
recomputes R and R~ per task from the samples beside each results file with
the rules of the authors' released code (``docs/conventions.md``).

Runs of one task over different documents (another sample size, seed, task
version or data) are put in separate *document sets*, detected from the
per-task document count, task version and data-relevant task configuration
and, where both runs logged samples, from the documents' ids and hashes. Each
row's ``<task>/docs`` holds the letter of its set; with more than one set a
note says what differs. A task a model did not run is ``missing`` (None in
every cell); a metric a run did not report (e.g. R~ without token counts) is
None as well: neither is ever 0.

``reference=`` adds, per task, the reference model's idealized accuracy
(median of R* / R~* over the beta grid, from :func:`~lm_eval_rankacc.analysis.idealized`)
and each model's alignment gap (that median minus the model's observed value),
over all documents (human ties included, like lm-eval's aggregate), for the
models that scored the reference's documents.

``paper=True`` adds the published rows of Chen et al. (2024), Tables 1-6, for
the tasks of the runs (:mod:`lm_eval_rankacc.analysis.paper`): reference rows
labelled ``<model> (paper, Table N)``, backend ``paper``, sorted with the
others, listed among the runs as ``published``; never rescored.
"""

from __future__ import annotations

from lm_eval_rankacc.analysis.leaderboard.columns import DEFAULT_METRICS, IDEALIZED, IDENTITY, METRIC_LABELS, column_type
from lm_eval_rankacc.analysis.leaderboard.document_sets import document_sets
from lm_eval_rankacc.analysis.leaderboard.table import leaderboard

__all__ = ["DEFAULT_METRICS", "IDEALIZED", "IDENTITY", "METRIC_LABELS", "column_type", "document_sets", "leaderboard"]
