"""Code the tests share: tiny models, hand-written lm-eval outputs and hub rows, local servers, a headless browser."""
