"""lm_eval_rankacc.core.jsontext: orjson where installed and willing, json
otherwise, the same records and messages either way (the `fast` extra is
optional)."""

import gc
import json
import math

import pytest

from lm_eval_rankacc.core import jsontext
from lm_eval_rankacc.core.errors import RunError
from lm_eval_rankacc.outputs.samples import read_samples
from tests.helpers.rankacc_samples import doc, write_samples

TEXTS = ['{"a": [1, 2.5, "x\\u00e9"], "b": null}', '{"big": 123456789012345678901234567890}',
         '{"x": NaN, "y": -Infinity}', '[-9223372036854775809, 18446744073709551616, 1e400]', '"\\ud800"', '[]']


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json only"])
def test_loads_equals_json(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(jsontext, "_orjson", None)
    for text in TEXTS:
        got, want = jsontext.loads(text), json.loads(text)
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), text
    assert math.isnan(jsontext.loads('{"x": NaN}')["x"])
    assert jsontext.loads(b'{"id": 123456789012345678901234567890}'.decode())["id"] == 123456789012345678901234567890
    assert (jsontext.fast_loads(b"[123456789012345678901]") is jsontext.REFUSED) or not fast
    if not fast:
        assert jsontext.fast_loads("[1]") is jsontext.REFUSED
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads('{"a": ')


def test_samples_read_the_same_without_orjson(tmp_path, monkeypatch):
    entries = [doc("a", [-1.0, float("nan")], [1, 2], alpha=0.75), doc("b", [-2.0, -3.0], [2, 1])]
    path = write_samples(tmp_path / "samples_rankacc_a_2026-01-01T00-00-00.000000.jsonl", entries)
    with_fast = read_samples(path)
    monkeypatch.setattr(jsontext, "_orjson", None)
    without = read_samples(path)
    assert (with_fast.ids, with_fast.hashes) == (without.ids, without.hashes)
    assert [dict(d) for d in with_fast.docs] == [dict(d) for d in without.docs]
    path.write_text(path.read_text() + '{"doc_id": 2, ')
    with pytest.raises(RunError, match="line 3: not valid JSON.*truncated"):
        read_samples(path)


def test_collector_paused_and_restored_on_error():
    assert gc.isenabled()
    with pytest.raises(KeyError):
        with jsontext.no_cyclic_gc():
            assert not gc.isenabled()
            raise KeyError("x")
    assert gc.isenabled()
