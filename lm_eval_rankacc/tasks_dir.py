"""``python -m lm_eval_rankacc.tasks_dir`` prints the task folder, for ``lm_eval --include_path``."""

from lm_eval_rankacc import tasks_dir

if __name__ == "__main__":
    print(tasks_dir())
