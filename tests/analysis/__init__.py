"""Tests of :mod:`lm_eval_rankacc.analysis`."""
