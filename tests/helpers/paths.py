"""Where the tests find the checkout and the real data beside it."""

from pathlib import Path

#: The repository root (the checkout the tests run from).
REPO = Path(__file__).resolve().parents[2]
#: ``../shared/data`` beside the checkout: real data read in place (never copied); absent on some machines.
SHARED_DATA = REPO.parent / "shared" / "data"
#: The real HH-RLHF harmless-base test split (2,312 pairs).
HH_REAL = SHARED_DATA / "hh-rlhf-harmless-base" / "test.jsonl.gz"
