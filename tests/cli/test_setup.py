"""``rankacc tiny-model``: a folder transformers loads offline, the same
weights for the same seed and other weights for another seed."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from lm_eval_rankacc.cli import main


def _weights(folder) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, torch_one_thread):
    """{name: (exit code, stdout, folder)} of ``rankacc tiny-model`` with seeds 0 (default), 0 and 1."""
    root = tmp_path_factory.mktemp("tiny-model")
    out = {}
    for name, seed in (("a", []), ("b", ["--seed", "0"]), ("c", ["--seed", "1"])):
        folder = root / name / "model"  # a folder that does not exist yet, nor its parent
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            rc = main(["tiny-model", str(folder), *seed])
        out[name] = rc, printed.getvalue(), folder
    return out


def test_tiny_model_builds_a_loadable_folder(built):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rc, printed, folder = built["a"]
    assert rc == 0 and printed.strip().splitlines()[-1] == str(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    ids = tok("Paris is the capital of France.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(logits).all()


def test_tiny_model_seed_draws_the_weights(built):
    a, b, c = (_weights(built[k][2]) for k in "abc")
    assert all(built[k][0] == 0 for k in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # the same seed: the same weights
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # another seed: other weights
    assert (built["a"][2] / "tokenizer.json").read_bytes() == (built["c"][2] / "tokenizer.json").read_bytes()


def test_tiny_model_into_a_file_is_one_line_exit_2(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main(["tiny-model", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("rankacc tiny-model: error: ") and "taken" in err
    assert target.read_text() == "mine"
