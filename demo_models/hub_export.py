"""Runs inside the Optimum virtual environment (see demo_models.hub): builds seeded random small models and
exports them with Optimum, as `optimum-cli export onnx --model DIR --task TASK OUT` does.

    build/optimum-venv/bin/python demo_models/hub_export.py JOBS.json

JOBS.json is a list of {"arch", "family", "config", "task", "out"} objects ("family": the transformers
architecture, a key of CLASSES, when it is not the arch's name; "config": keyword arguments of its config class, or
"source": a folder to export as it is). This file imports only what that environment has (torch, transformers 4.57,
optimum), never webjit or the demo_models package.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

# arch -> (transformers config class, model class saved with save_pretrained)
CLASSES = {
    "bert": ("BertConfig", "BertModel"),
    "roberta": ("RobertaConfig", "RobertaModel"),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel"),
    "distilbert": ("DistilBertConfig", "DistilBertModel"),
    "albert": ("AlbertConfig", "AlbertModel"),
    "electra": ("ElectraConfig", "ElectraModel"),
    "mpnet": ("MPNetConfig", "MPNetModel"),
    "deberta-v2": ("DebertaV2Config", "DebertaV2Model"),
    "vit": ("ViTConfig", "ViTModel"),
    "whisper": ("WhisperConfig", "WhisperForConditionalGeneration"),
    "t5": ("T5Config", "T5ForConditionalGeneration"),
    "bart": ("BartConfig", "BartForConditionalGeneration"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
}


def save_random(family: str, config: dict, folder: Path) -> None:
    """A seeded random model of architecture `family` with `config`, its 1-D parameters (biases, norms) perturbed so
    that none is all zeros or all ones (an exporter would drop or share those), saved with save_pretrained."""
    import torch
    import transformers

    torch.manual_seed(0)
    config_cls, model_cls = (getattr(transformers, n) for n in CLASSES[family])
    model = model_cls(config_cls(**config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(folder)


def export(job: dict) -> None:
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory() as tmp:
        if "source" in job:
            src, library = job["source"], "sentence_transformers"
        else:
            src, library = str(Path(tmp) / "model"), None
            save_random(job.get("family", job["arch"]), job["config"], Path(src))
        main_export(src, job["out"], task=job["task"], no_post_process=True, library_name=library,
                    do_validation=False)


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    jobs = json.loads(Path(argv[0]).read_text())
    for job in jobs:
        start = time.perf_counter()
        Path(job["out"]).mkdir(parents=True, exist_ok=True)
        export(job)
        print(f"exported {job['arch']} ({job['task']}) in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
