"""Hugging Face hub-style repositories made by Optimum, from seeded random small configs, as users download them.

    python -m demo_models hub bert t5 ...|all [--force]

    >>> from demo_models import hub
    >>> repo = hub.get("t5")                 # <cache>/hub/t5, exported once
    >>> hub.files("t5")                      # ['onnx/encoder_model.onnx', 'onnx/encoder_model_fp16.onnx', ...]
    >>> feeds = hub.sample_inputs(repo / "onnx/decoder_with_past_model.onnx", past=5)

Each repository holds `config.json`, `tokenizer.json` where the model has one, and under `onnx/` the files Optimum
writes (`model.onnx`, or `encoder_model.onnx`, `decoder_model.onnx` and `decoder_with_past_model.onnx` for
sequence-to-sequence models), each with its `_fp16`, `_quantized` (q8) and `_q4` siblings made by
demo_models.precisions. Optimum pins its own transformers, so the export runs in a virtual environment of its own,
build/optimum-venv, made on first use (about a minute: torch installs from a local wheel).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from webjit.files import replace_dir

from . import _export_lock, cache_dir, minilm_dir

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "optimum-venv"
VENV_PACKAGES = ["optimum-onnx==0.1.0", "torch==2.13.0", "transformers==4.57.6", "onnxruntime==1.32.0",
                 "sentence-transformers==5.1.2"]
PRECISIONS = {"fp16": "_fp16", "q8": "_quantized", "q4": "_q4"}  # form -> file name suffix (transformers.js's)

# Sizes are odd on purpose (hidden sizes not multiples of 64, 3 or 5 heads): they catch tiling bugs.
_BERTLIKE = dict(vocab_size=1000, hidden_size=60, num_hidden_layers=2, num_attention_heads=3, intermediate_size=120,
                 max_position_embeddings=128)
ENCODER, SEQ2SEQ, DECODER = ("model",), ("encoder_model", "decoder_model", "decoder_with_past_model"), ("model",)


@dataclass(frozen=True)
class HubSpec:
    task: str
    config: dict = field(default_factory=dict)
    stems: tuple[str, ...] = ENCODER  # the ONNX files Optimum writes, without .onnx
    family: str | None = None  # the transformers architecture (hub_export.CLASSES), when not the name itself
    forms: tuple[str, ...] = ("fp32", *PRECISIONS)  # the precisions the repository holds


ARCHS: dict[str, HubSpec] = {
    "bert": HubSpec("feature-extraction", _BERTLIKE),
    "roberta": HubSpec("feature-extraction", {**_BERTLIKE, "hidden_size": 80, "num_attention_heads": 5,
                                              "intermediate_size": 160, "max_position_embeddings": 130,
                                              "pad_token_id": 1}),
    "xlm-roberta": HubSpec("feature-extraction", {**_BERTLIKE, "hidden_size": 40, "num_attention_heads": 5,
                                                  "intermediate_size": 80, "max_position_embeddings": 130,
                                                  "pad_token_id": 1}),
    "distilbert": HubSpec("feature-extraction", dict(vocab_size=1000, dim=60, n_layers=2, n_heads=3, hidden_dim=120,
                                                     max_position_embeddings=128)),
    "albert": HubSpec("feature-extraction", {**_BERTLIKE, "embedding_size": 24}),
    "electra": HubSpec("feature-extraction", {**_BERTLIKE, "embedding_size": 40}),
    "mpnet": HubSpec("feature-extraction", {**_BERTLIKE, "max_position_embeddings": 130,
                                            "relative_attention_num_buckets": 32}),
    "deberta-v2": HubSpec("feature-extraction", {**_BERTLIKE, "relative_attention": True, "position_buckets": 16,
                                                 "max_relative_positions": 64, "pos_att_type": ["p2c", "c2p"],
                                                 "norm_rel_ebd": "layer_norm", "share_att_key": True,
                                                 "type_vocab_size": 0}),
    "vit": HubSpec("image-feature-extraction", dict(image_size=32, patch_size=8, num_channels=3, hidden_size=60,
                                                    num_hidden_layers=2, num_attention_heads=3,
                                                    intermediate_size=120)),
    "whisper": HubSpec("automatic-speech-recognition-with-past", dict(
        vocab_size=1000, d_model=40, encoder_layers=2, decoder_layers=2, encoder_attention_heads=5,
        decoder_attention_heads=5, encoder_ffn_dim=80, decoder_ffn_dim=80, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=64, pad_token_id=999, bos_token_id=998, eos_token_id=999,
        decoder_start_token_id=998, suppress_tokens=[], begin_suppress_tokens=[]), SEQ2SEQ),
    "t5": HubSpec("text2text-generation-with-past", dict(
        vocab_size=1000, d_model=40, d_kv=8, d_ff=80, num_layers=2, num_decoder_layers=2, num_heads=5,
        relative_attention_num_buckets=32, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1), SEQ2SEQ),
    "bart": HubSpec("text2text-generation-with-past", dict(
        vocab_size=1000, d_model=60, encoder_layers=2, decoder_layers=2, encoder_attention_heads=3,
        decoder_attention_heads=3, encoder_ffn_dim=120, decoder_ffn_dim=120, max_position_embeddings=128), SEQ2SEQ),
    "gpt2": HubSpec("text-generation-with-past", dict(vocab_size=1000, n_embd=60, n_layer=2, n_head=3, n_positions=128,
                                                      bos_token_id=999, eos_token_id=999), DECODER),
    "llama": HubSpec("text-generation-with-past", dict(
        vocab_size=1000, hidden_size=120, num_hidden_layers=2, num_attention_heads=5, num_key_value_heads=1,
        intermediate_size=200, max_position_embeddings=128), DECODER),
    "qwen2": HubSpec("text-generation-with-past", dict(
        vocab_size=1000, hidden_size=60, num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
        intermediate_size=120, max_position_embeddings=128), DECODER),
    # the real all-MiniLM-L6-v2, exported through Optimum's sentence-transformers path (mean pooling, normalised)
    "minilm": HubSpec("feature-extraction"),
}

# Full-size decoders for the text-generation benchmark (python -m e2e.bench --generate), fp32 only, exported on
# demand by it and never by `hub all`: GPT-2 small's 124M parameters, and a Llama-style ~100M with grouped-query
# attention (12 heads over 4 key/value heads).
BENCH_ARCHS: dict[str, HubSpec] = {
    "gpt2-124m": HubSpec("text-generation-with-past", dict(vocab_size=50257, n_embd=768, n_layer=12, n_head=12,
                                                           n_positions=1024, bos_token_id=50256,
                                                           eos_token_id=50256), DECODER, "gpt2", ("fp32",)),
    "llama-100m": HubSpec("text-generation-with-past", dict(
        vocab_size=32000, hidden_size=768, num_hidden_layers=8, num_attention_heads=12, num_key_value_heads=4,
        intermediate_size=2048, max_position_embeddings=1024), DECODER, "llama", ("fp32",)),
}


class HubError(Exception):
    """A step that cannot be done (no Python for the venv, a failed export); one line."""


def _say(text: str) -> None:
    print(f"hub: {text}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    """The Optimum virtual environment's Python, creating the environment first if it is missing (idempotent)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".packages"
    want = "\n".join(VENV_PACKAGES)
    if stamp.is_file() and stamp.read_text() == want:
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".optimum-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == want:
            return python
        _say(f"creating {VENV.relative_to(ROOT)} with {', '.join(VENV_PACKAGES)}")
        shutil.rmtree(VENV, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(VENV)], "creating the virtual environment")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *VENV_PACKAGES],
             "pip install of " + " ".join(VENV_PACKAGES))
        stamp.write_text(want)
    return python


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        lines = [l for l in (done.stderr + done.stdout).splitlines() if l.strip() and "WARNING: Location" not in l]
        raise HubError(f"{what} failed (exit {done.returncode}): {lines[-1].strip() if lines else 'no output'}")


def hub_dir() -> Path:
    return cache_dir() / "hub"


def files(arch: str, forms: tuple[str, ...] | None = None) -> list[str]:
    """The ONNX files of `arch`'s repository, relative to it: every Optimum file in every precision it holds."""
    spec = _spec(arch)
    return [f"onnx/{stem}{'' if form == 'fp32' else PRECISIONS[form]}.onnx" for stem in spec.stems
            for form in (spec.forms if forms is None else forms)]


def _spec(arch: str) -> HubSpec:
    try:
        return ARCHS.get(arch) or BENCH_ARCHS[arch]
    except KeyError:
        raise KeyError(f"unknown hub architecture {arch!r}; known: {', '.join([*ARCHS, *BENCH_ARCHS])}") from None


def _complete(arch: str) -> bool:
    repo = hub_dir() / arch
    return (repo / "config.json").is_file() and all((repo / f).is_file() for f in files(arch))


def get(arch: str, *, force: bool = False) -> Path:
    """The repository folder `<cache>/hub/<arch>`, exported first if needed."""
    return get_many([arch], force=force)[arch]


def get_many(archs: list[str], *, force: bool = False) -> dict[str, Path]:
    """Like get, for several architectures exported in one run of the Optimum environment."""
    for arch in archs:
        _spec(arch)
    root = hub_dir()
    todo = [a for a in dict.fromkeys(archs) if force or not _complete(a)]
    if todo:
        root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as locks:
            for arch in sorted(todo):  # one order for every process: no two wait on each other
                locks.enter_context(_export_lock(root, arch))
            todo = [a for a in todo if force or not _complete(a)]  # another process may have made them meanwhile
            if todo:
                _export(todo, root)
    return {arch: root / arch for arch in archs}


def _export(archs: list[str], root: Path) -> None:
    tmps = {a: Path(tempfile.mkdtemp(prefix=f".{a}.tmp-", dir=root)) for a in archs}
    try:
        jobs = []
        for arch, tmp in tmps.items():
            tmp.chmod(0o755)
            spec = _spec(arch)
            job = {"arch": arch, "family": spec.family or arch, "task": spec.task, "out": str(tmp / "optimum")}
            if arch == "minilm":
                job["source"] = str(minilm_dir())
            else:
                job["config"] = spec.config
            jobs.append(job)
        (root / f".jobs-{os.getpid()}.json").write_text(json.dumps(jobs))
        try:
            _run([str(venv_python()), str(Path(__file__).with_name("hub_export.py")),
                  str(root / f".jobs-{os.getpid()}.json")], f"optimum export of {', '.join(archs)}")
        finally:
            (root / f".jobs-{os.getpid()}.json").unlink(missing_ok=True)
        for arch, tmp in tmps.items():
            _lay_out(arch, tmp)
            replace_dir(tmp / "repo", root / arch)
    finally:
        for tmp in tmps.values():
            shutil.rmtree(tmp, ignore_errors=True)


def _lay_out(arch: str, tmp: Path) -> None:
    """Optimum's output folder -> a hub repository: config and tokenizer at the top, ONNX files under onnx/."""
    from .precisions import convert

    out, repo = tmp / "optimum", tmp / "repo"
    (repo / "onnx").mkdir(parents=True)
    repo.chmod(0o755)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (out / name).is_file():
            shutil.copy2(out / name, repo / name)
    if arch == "minilm" and not (repo / "tokenizer.json").is_file():
        shutil.copy2(minilm_dir() / "tokenizer.json", repo / "tokenizer.json")
    spec = _spec(arch)
    for stem in spec.stems:
        src = out / f"{stem}.onnx"
        if not src.is_file():
            raise HubError(f"optimum export of {arch} wrote no {stem}.onnx (it wrote {sorted(p.name for p in out.iterdir())})")
        for extra in out.glob(f"{stem}.onnx*"):  # the file and any external data beside it
            shutil.copy2(extra, repo / "onnx" / extra.name)
        for form in spec.forms:
            if form == "fp32":
                continue
            dst = repo / "onnx" / f"{stem}{PRECISIONS[form]}.onnx"
            convert(repo / "onnx" / src.name, dst, form)
            dst.chmod(0o644)  # written through mkstemp, which makes it private


def sample_inputs(path: str | Path, seq: int = 23, batch: int = 1, past: int = 7, seed: int = 0
                  ) -> dict[str, np.ndarray]:
    """Deterministic inputs for the hub file `path`, named and typed as its graph inputs are.

    Token ids lie within the vocabulary of the repository's config.json; the attention mask pads the last quarter of
    the sequence; `past_key_values.*` inputs hold `past` positions (the attention mask then covers past + seq);
    encoder hidden states hold `seq` positions; `pixel_values` and `input_features` take the image size and the
    number of frames from the config (3000 frames for Whisper).
    """
    import onnx

    path = Path(path)
    config = json.loads((path.parent.parent / "config.json").read_text())
    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    vocab = int(config.get("vocab_size", 1000))
    has_past = any(i.name.startswith("past_key_values") for i in model.graph.input)
    total = past + seq if has_past else seq
    feeds = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        name = inp.name
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        if name in ("input_ids", "decoder_input_ids"):
            value = rng.integers(3, vocab - 3, (batch, seq))
        elif name in ("attention_mask", "decoder_attention_mask"):
            value = np.ones((batch, total))
            if has_past and past:
                value[:, : max(1, past // 3)] = 0  # left padding in the cache, as batched generation has
            else:
                value[:, total - max(1, seq // 4):] = 0
        elif name == "encoder_attention_mask":
            value = np.ones((batch, seq))
            value[:, seq - max(1, seq // 4):] = 0
        elif name == "token_type_ids":
            value = np.zeros((batch, seq))
        elif name == "position_ids":
            value = np.broadcast_to(np.arange(past if has_past else 0, total), (batch, seq))
        elif name == "pixel_values":
            size, channels = config.get("image_size", 32), config.get("num_channels", 3)
            value = rng.standard_normal((batch, channels, size, size))
        elif name == "input_features":
            value = rng.standard_normal((batch, config["num_mel_bins"], 2 * config["max_source_positions"]))
        elif name == "encoder_hidden_states":
            frames = config.get("max_source_positions") if "max_source_positions" in config else seq
            value = rng.standard_normal((batch, frames, dims[-1]))
        elif name.startswith("past_key_values"):
            width = dims[1:]
            if ".encoder." in name:  # cross-attention cache: the encoder's length
                length = config.get("max_source_positions", seq)
            else:
                length = past
            value = rng.standard_normal((batch, width[0], length, width[2])) * 0.5
        else:
            raise HubError(f"{path.name}: no sample value for input {name!r}")
        feeds[name] = np.ascontiguousarray(value).astype(dtype)
    return feeds


def main(argv: list[str] | None = None) -> int:
    """`python -m demo_models hub ARCH [ARCH ...]|all [--force]`: export the repositories, print their folders."""
    import argparse
    import time

    p = argparse.ArgumentParser(prog="python -m demo_models hub", description=__doc__.split("\n\n")[0])
    p.add_argument("archs", nargs="+", help=f"architectures: {', '.join(ARCHS)} or all (which leaves out the "
                                            f"benchmark's {', '.join(BENCH_ARCHS)})")
    p.add_argument("--force", action="store_true", help="export again even if cached")
    args = p.parse_args(argv)
    archs = list(ARCHS) if "all" in args.archs else args.archs
    unknown = [a for a in archs if a not in ARCHS and a not in BENCH_ARCHS]
    if unknown:
        p.error(f"unknown architecture(s): {', '.join(unknown)}")
    start = time.perf_counter()
    try:
        repos = get_many(archs, force=args.force)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for arch, repo in repos.items():
        size = sum(f.stat().st_size for f in repo.rglob("*") if f.is_file()) / 2**20
        print(f"{arch}: {repo} ({len(files(arch))} ONNX files, {size:.1f} MiB)")
    print(f"{len(repos)} repositories in {time.perf_counter() - start:.1f} s")
    return 0
