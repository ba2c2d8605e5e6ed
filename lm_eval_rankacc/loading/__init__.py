"""Reading the inputs: a task's rows from local files, package data, the
offline mirror or the pinned hub source, converted and sampled into
documents; and fetching the demo model. No lm-eval."""
