"""Which published values the authors' released scripts can produce as published
(``paper_tables.json``: ``released_scripts``; :func:`lm_eval_rankacc.analysis.paper.provenance`),
checked against the scripts' own lists, typed here from the released code
(angie-chen55/pref-learning-ranking-acc, commit a86bdef): the notes and the
summary of ``--paper`` must say the same, and never that every value was
computed by the released code."""

from __future__ import annotations

from lm_eval_rankacc.analysis import paper, published_rows

#: calculate_calibration_metrics.py, lines 14-77: the (dataset, split) pairs it scores (R and R~),
#: by the names the paper's tables print; line 93: include_ties=False for all of them.
CALIBRATION_SCRIPT = {("UltraFeedback", "Train"), ("Alpaca Farm", "Validation"), ("Anthropic HH-RLHF", "Test"),
                      ("Stanford Human Preferences", "Test"), ("Synthetic Instruct GPT-J Pairwise", "Train"),
                      ("StackExchange Preferences", "Train")}
#: calculate_upper_bound_rlhf.py, lines 21-34: Alpaca Farm validation only (R* and R~*), ties excluded.
UPPER_BOUND_SCRIPT = {("Alpaca Farm", "Validation")}
#: The tables that include Alpaca Farm's ties (their captions).
TIES_INCLUDED = {5, 6}


def _published_kinds() -> dict[tuple[int, str], tuple[str, str, set[str]]]:
    """(table, task) -> (dataset, split, kinds of values printed), from the published rows."""
    out: dict[tuple[int, str], tuple[str, str, set[str]]] = {}
    for row in published_rows():
        kinds = {"observed"} | ({"idealized"} if "R_star_median" in row["values"] else set())
        out.setdefault((row["table"], row["task"]), (row["dataset"], row["split"], set()))[2].update(kinds)
    return out


def _same_as_table_1(kind_keys: tuple[str, ...]) -> bool:
    rows = {(r["table"], r["model"]): r["values"] for r in published_rows() if r["table"] in (1, 6)}
    models = {m for _, m in rows}
    return all(rows[(6, m)][k] == rows[(1, m)][k] for m in models for k in kind_keys)


def test_every_published_value_has_one_provenance_that_the_scripts_lists_support():
    ideal_keys = tuple(f"{n}_{k}" for n in ("R_star", "R_norm_star") for k in ("min", "median", "max"))
    covered = 0
    for (table, task), (dataset, split, kinds) in _published_kinds().items():
        entries = paper.provenance(table, task)
        assert sorted(e["values"] for e in entries) == sorted(kinds), (table, task)
        for e in entries:
            covered += 1
            if e["values"] == "observed":
                expected = (dataset, split) in CALIBRATION_SCRIPT and table not in TIES_INCLUDED
            else:  # ties excluded only: Table 6's can be the script's only by being Table 1's
                expected = (dataset, split) in UPPER_BOUND_SCRIPT and (
                    table not in TIES_INCLUDED or _same_as_table_1(ideal_keys))
            assert e["produced"] is expected, (table, task, e)
            assert e["why"].split()[0] in ("calculate_calibration_metrics.py", "calculate_upper_bound_rlhf.py,",
                                           "calculate_upper_bound_rlhf.py"), e
    assert covered == len(paper.tables()["released_scripts"]["columns"]) == 13
    cannot = sorted((e["table"], e["task"], e["values"]) for e in paper.tables()["released_scripts"]["columns"]
                    if not e["produced"])
    assert cannot == [(2, "rankacc_hh_rlhf_train", "observed"), (4, "rankacc_shp_multi_train", "observed"),
                      (5, "rankacc_alpaca_farm_val_ties", "observed"), (6, "rankacc_alpaca_farm_val_ties", "observed")]


def test_the_notes_and_summary_say_which_and_never_credit_all_to_the_released_code():
    tasks = paper.published_tasks()
    out = paper.leaderboard_rows(tasks, ["rank_acc", "rank_acc_norm"])
    text = " ".join(out.notes) + " " + out.summary
    assert "computed by the authors' released code" not in text
    assert "computed by the authors' released code" not in " ".join(paper.tables()["about"])
    note = next(n for n in out.notes if n.startswith("rankacc_hh_rlhf_train: published rows"))
    assert ("Table 2: R, R~ not from the released scripts as published (calculate_calibration_metrics.py lists "
            "Anthropic/hh-rlhf with the test split only)") in note
    ties = next(n for n in out.notes if n.startswith("rankacc_alpaca_farm_val_ties: published rows"))
    assert "Table 5: R, R~ not from the released scripts" in ties
    assert "Table 6: R, R~ not from the released scripts" in ties and "; R*, R~* from the released scripts" in ties
    test = next(n for n in out.notes if n.startswith("rankacc_hh_rlhf_test: published rows"))
    assert "Table 2: R, R~ from the released scripts as published" in test
    assert out.summary.endswith("(which the released scripts can produce: the notes)")
