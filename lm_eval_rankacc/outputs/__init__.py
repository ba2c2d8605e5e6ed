"""Reading what lm-eval wrote: its file names, its results JSON and the
samples files of rankacc tasks, and matching documents between runs. No
lm-eval, torch, transformers or datasets: the analyses run without them."""
