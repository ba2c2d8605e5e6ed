"""The pure rules: the document schema, the paper's theory, the released
code's rules, paired statistics, the prompt-once layout, judge verdicts, JSON
text, checkpoint names and the package's errors. No I/O, no lm-eval, torch,
transformers or datasets; every other package builds on these."""
