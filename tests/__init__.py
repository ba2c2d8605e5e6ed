"""The test suite, one sub-package per package of lm_eval_rankacc; shared code in :mod:`tests.helpers`."""
