"""``python -m lm_eval_rankacc COMMAND``: the ``rankacc`` command line, e.g.
``python -m lm_eval_rankacc tasks-dir`` for ``lm_eval --include_path``."""

import sys

from lm_eval_rankacc.cli import main

if __name__ == "__main__":
    sys.exit(main())
