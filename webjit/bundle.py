"""Stage 7 (web): write a plan as a static bundle the browser runtime (`web/`) loads.

    webjit.bundle.build("model.onnx", "out/", values=feeds)

A bundle is data only: `manifest.json` (schema in web/MANIFEST.md), one WGSL file per distinct kernel source
(`kernels/<sha256>.wgsl`), the plan as WebAssembly modules with their memory layout (`wasm/<sha256>.wasm`,
`bundle_wasm.py`), weight shards (`weights/shard-NNN.bin`: device form, or with `weights="fp16"` float32 weights
as IEEE float16 that the runtime widens back on load; `bundle_weights.py`) and, when onnxruntime is installed, the
sample inputs with onnxruntime's outputs for them (`reference/`). Every file is listed in the manifest with its
SHA-256. Names from the model appear only as JSON strings in the manifest.

This module holds the entry points, the kernel and reference files, and the manifest's assembly; the plans it
writes (one per shape class, or for text generation) come from `bundle_plans.py`.

The bundle is written into a temporary folder next to the destination and renamed into place: a failed build
leaves nothing behind and keeps the previous bundle.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

from . import hub_folder
from .version import VERSION
from .bundle_plans import compile_generation, compile_plans, compile_seq2seq
from .bundle_wasm import write_wasm
from .bundle_weights import WEIGHT_FORMATS
from .bundle_weights import write_weights as _write_weights  # by this name, so that a test can make it fail
from .errors import PaddingChanges, WebjitError
from .files import replace_dir
from .generation import ENCODER_FOLDER
from .plan import Plan, nbytes
from .progress import Progress
from .render_wgsl import render
from .space import DEFAULT_LIMITS, prune
from .tensor import Tensor

FORMAT = "webjit-bundle"
SCHEMA_VERSION = 1
SHARD_BYTES = 32_000_000  # at most 32 MB per weight shard (a multiple of plan.OFFSET_ALIGN)
DEVICE_DTYPE = {"float32": "float32", "int64": "int32", "int32": "int32", "bool": "uint32"}
BACKENDS = ("webgpu", "wasm")


def build(model: str | os.PathLike, out: str | os.PathLike, shapes: dict | None = None,
          values: dict | None = None, *, weights: str | None = None, reference: bool = True,
          backends=BACKENDS, buckets: list[str] | None = None, generate=None, encoder=None,
          dtype: str | None = None) -> Path:
    """Stage entry point: compile `model` for `shapes` / sample `values` and write the bundle to `out`.
    reference: also store `values` and onnxruntime's outputs for them (needs `values` and onnxruntime).
    backends: what to write kernels for: "webgpu" (WGSL files) and/or "wasm" (WebAssembly modules).
    buckets: length buckets such as ["16,32,64"] or ["seq=16,32,64"] (see shape_classes): the bundle then serves
    every size of those dims up to the maximum that `shapes` / `values` give.
    weights: "fp32" or "fp16" (see WEIGHT_FORMATS); None: fp16 for a float16 model (its own bytes), else fp32.
    generate: a generation.Spec: compile a decoder with a past for text generation (prefill and decode plans,
    generation.py) instead of one forward pass; or a generation.Seq2SeqSpec for an encoder-decoder model's
    decoder_model.onnx, with its `encoder` (encoder_model.onnx), whose bundle goes into encoder/.
    model may be a hub-style folder (hub_folder.py): `dtype` (fp32, fp16, q8, q4) picks its ONNX file, the
    bundle carries its tokenizer and a `pipeline` section, and a text encoder without shapes gets length buckets
    up to its maximum length. Returns the bundle's folder."""
    out = Path(out)
    _check_replaceable(out)
    folder, default_buckets = None, None
    if hub_folder.is_folder(model):
        folder = hub_folder.resolve(model, dtype, generate is not None)
        model, encoder = folder.model, encoder or hub_folder.encoder_of(folder)
        if shapes is None and values is None and generate is None:
            shapes, default_buckets = hub_folder.default_shapes(model, folder.max_length)
            buckets = buckets if buckets is not None else default_buckets or None
    elif dtype is not None:
        raise WebjitError(f"--dtype picks a file of a hub-style folder; {model} is one ONNX file")
    try:
        files = build_files(model, shapes, values, weights=weights, reference=reference, backends=backends,
                            buckets=buckets, generate=generate, encoder=encoder, folder=folder)
    except PaddingChanges as e:
        if folder is None or not default_buckets:
            raise
        # a folder's default buckets, on a model whose outputs depend on the padding (a dynamically quantized one
        # scales its activations by the whole tensor's range): one length, which pipeline() pads inputs to
        print(f"webjit: {folder.model.name} is built for length {folder.max_length} only: {e}", file=sys.stderr)
        files = build_files(model, shapes, values, weights=weights, reference=reference, backends=backends,
                            buckets=None, generate=generate, encoder=encoder, folder=folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be served
        for path, data in files.items():
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_bytes(data)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_files(model: str | os.PathLike, shapes: dict | None = None, values: dict | None = None, *,
                weights: str | None = None, reference: bool = True, backends=BACKENDS,
                buckets: list[str] | None = None, generate=None, encoder=None,
                outputs: list[str] | None = None, folder=None) -> dict[str, bytes]:
    """The bundle `build` writes, in memory: path -> bytes, "manifest.json" last. Needs neither numpy nor a file
    system beyond reading the model, so it also runs in a browser (inbrowser.py)."""
    if weights is not None and weights not in WEIGHT_FORMATS:
        raise WebjitError(f"weights '{weights}' is not supported; choose from {', '.join(WEIGHT_FORMATS)}")
    if not backends or any(b not in BACKENDS for b in backends):
        raise WebjitError(f"backends {','.join(backends)}: choose one or more of {', '.join(BACKENDS)}")
    backends = [b for b in BACKENDS if b in backends]
    from .generation import Seq2SeqSpec
    nested: dict[str, bytes] = {}  # an encoder-decoder model's encoder bundle, under encoder/
    if generate is not None and buckets:
        raise WebjitError("--generate picks its own buckets (--prompt-buckets, --past-buckets); drop --buckets")
    if isinstance(generate, Seq2SeqSpec):
        encoder_bundle = partial(build_files, weights=weights, reference=False, backends=backends)
        plans, dynamic, generation, enc_files = compile_seq2seq(model, encoder, generate, encoder_bundle)
        nested = {f"{ENCODER_FOLDER}/{path}": data for path, data in enc_files.items() if path != SNIPPET}
        reference = False  # the decoder computes only its logits
    elif generate is not None:
        plans, dynamic, generation = compile_generation(model, generate)
        reference = False  # the plans' present outputs hold only the new rows: onnxruntime's differ
    else:
        plans, dynamic = compile_plans(model, shapes, values, buckets, outputs)
        generation = None
    plan = plans[-1]  # the largest class: the manifest's top level
    if weights is None:
        weights = "fp16" if plan.half_weights else "fp32"
    writer = _Writer()
    if nested:  # only the encoder's manifest is a file of this bundle: it holds the hashes of the others
        writer.write(f"{ENCODER_FOLDER}/manifest.json", nested[f"{ENCODER_FOLDER}/manifest.json"])
    shards, weight_records, indices = _write_weights(plans, writer, weights, SHARD_BYTES)
    wasm, class_wasm = (write_wasm(plans, writer, weight_records, indices) if "wasm" in backends
                        else (None, [None] * (len(plans) - 1)))
    loaded, loaded_indices = _loaded(plans)
    sections = []
    for c, p in enumerate(plans):
        variants = _write_kernels(p, writer) if "webgpu" in backends else None
        prefix = "" if p is plan else f"c{c}-"
        consts = {n: writer.write(f"consts/{prefix}output-{i:03d}.bin", _raw(p.consts[n]))
                  for i, n in enumerate(p.outputs) if n in p.consts}
        sections.append(_class_section(p, variants, indices[c], loaded_indices[c], consts))
    ref = _write_reference(model, plan, values, writer) if reference and values is not None else None
    if dynamic is not None:
        dynamic["classes"] = [{"dims": dims, **section} | ({"wasm": w} if w is not None else {})
                              for dims, section, w in zip(dynamic.pop("sizes")[:-1], sections, class_wasm)]
    if folder is not None and folder.tokenizer is not None:
        writer.write(hub_folder.TOKENIZER, folder.tokenizer.read_bytes())
    manifest = _manifest(sections[-1], shards, weight_records, loaded, ref, writer.files, weights, backends, wasm,
                         dynamic)
    if folder is not None:
        task = ("text2text-generation" if isinstance(generate, Seq2SeqSpec) else "text-generation"
                if generate is not None else "feature-extraction")
        manifest["pipeline"] = hub_folder.pipeline_section(folder, task, plan.outputs)
    if generation is not None:
        manifest["generate"] = generation
    data = _json(manifest).encode()
    return {**nested, **writer.contents, SNIPPET: snippet(integrity(data)).encode(), "manifest.json": data}


SNIPPET = "snippet.html"  # how a page pins this bundle (not a file of the manifest: it holds the manifest's hash)


def integrity(manifest: bytes) -> str:
    """The manifest's hash in Subresource Integrity form, for InferenceSession.create(url, {integrity})."""
    import base64
    return "sha256-" + base64.b64encode(hashlib.sha256(manifest).digest()).decode()


def snippet(pin: str) -> str:
    return f"""<!-- Load this bundle pinned to its manifest: the manifest holds the SHA-256 of every other file, so a changed
     file anywhere in the bundle is refused. Serve the runtime (web/ of webjit, or the npm package) beside it.
     Under a strict Content-Security-Policy, put the script in a module file of its own. -->
<script type="module">
  import {{ InferenceSession }} from '/web/webjit.js';
  const session = await InferenceSession.create('./', {{ integrity: '{pin}' }});
</script>
"""


# -- files ---------------------------------------------------------------------------------------------------------
class _Writer:
    """Holds the bundle's files (`contents`) and records their size and SHA-256 for the manifest (`files`)."""

    def __init__(self):
        self.contents: dict[str, bytes] = {}
        self.files: dict[str, dict] = {}

    def write(self, path: str, data: bytes) -> str:
        if path not in self.files:
            self.contents[path] = data
            self.files[path] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return path


def _raw(arr) -> bytes:
    """A Tensor or numpy array as raw little-endian bytes in its own dtype (bool as one byte)."""
    return Tensor.from_array(arr).tobytes()


def _write_kernels(plan: Plan, writer: _Writer) -> dict[str, list[dict]]:
    """Every variant that fits the limits a bundle plans for, one file per distinct source."""
    out: dict[str, list[dict]] = {}
    bar = Progress("kernels", len(plan.kernels))
    for i, k in enumerate(plan.kernels):
        space = prune(k.space, DEFAULT_LIMITS)
        if not space:
            raise WebjitError(f"kernel {k.name} (node '{k.node}'): no variant fits WebGPU's default limits")
        rows = []
        for v in space:
            src = render(k, v, plan.dtypes).encode()
            path = writer.write(f"kernels/{hashlib.sha256(src).hexdigest()}.wgsl", src)
            rows.append({"key": v.key, "file": path, "dispatch": list(v.dispatch), "threads": v.threads,
                         "smemBytes": v.smem_bytes, "registers": v.registers})
        out[k.name] = rows
        bar(i + 1, note=k.name)
    return out


def _write_reference(model, plan: Plan, values: dict, writer: _Writer) -> dict:
    """The sample inputs and onnxruntime's outputs for them, as raw little-endian arrays."""
    try:
        import onnxruntime
        from .validate import reference
    except ImportError:
        raise WebjitError("storing reference outputs needs onnxruntime (pip install 'webjit[validate]'); "
                          "or build without them") from None
    import numpy as np
    outputs = reference(model, values)

    def record(kind: str, i: int, name: str, arr) -> dict:
        path = writer.write(f"reference/{kind}-{i:03d}.bin", _raw(arr))
        return {"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape), "file": path}

    return {"source": f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider",
            "inputs": [record("input", i, n, np.asarray(values[n])) for i, n in enumerate(plan.inputs)],
            "outputs": [record("output", i, n, np.asarray(outputs[n])) for i, n in enumerate(plan.outputs)]}


# -- the manifest --------------------------------------------------------------------------------------------------
def _loaded(plans: list[Plan]) -> tuple[list[int], list[dict[str, int]]]:
    """The buffers the load-time kernels of every class write (their byte sizes: the manifest's `loaded`) and, per
    class, value name -> index into them. Each class has its own, since no run of another class may overwrite
    them."""
    sizes: list[int] = []
    indices: list[dict[str, int]] = []
    for p in plans:
        indices.append({})
        for name, size in p.loaded.items():
            indices[-1][name] = len(sizes)
            sizes.append(int(size))
    return sizes, indices


def _class_section(plan: Plan, variants, weight_index: dict[str, int], loaded_index: dict[str, int],
                   consts: dict[str, str]) -> dict:
    """What differs between shape classes: inputs and outputs with their shapes, the pool, the kernels and how many
    of them run at load."""
    input_index = {n: i for i, n in enumerate(plan.inputs)}

    def binding(name: str, access: str) -> dict:
        if name in weight_index:
            return {"buffer": "weight", "index": weight_index[name], "access": access}
        if name in input_index:
            return {"buffer": "input", "index": input_index[name], "access": access}
        if name in loaded_index:
            return {"buffer": "loaded", "index": loaded_index[name], "access": access}
        return {"buffer": "pool", "index": plan.slots[name][0], "access": access}

    kernels = [{"name": k.name, "kind": k.kind, "node": k.node,
                "bindings": [binding(n, "read-only") for n in k.inputs] + [binding(n, "read-write")
                                                                            for n in k.outputs],
                "flops": int(k.flops), "bytes": int(k.bytes), "variants": variants[k.name]}
               for k in plan.kernels] if variants is not None else []
    return {
        "inputs": [_tensor(plan, n) | {"bytes": nbytes(plan.shapes[n])} for n in plan.inputs],
        "outputs": [_tensor(plan, n) | {"from": _output_source(plan, n, input_index, consts)} for n in plan.outputs],
        "pool": [int(b) for b in plan.pool],
        "load": plan.load,
        "kernels": kernels,
    }


def _manifest(top: dict, shards, weights, loaded, ref, files, weight_format, backends, wasm, dynamic) -> dict:
    manifest = {
        "format": FORMAT, "version": SCHEMA_VERSION, "generator": f"webjit {VERSION}", "backends": backends,
        "limits": {k: DEFAULT_LIMITS[k] for k in ("maxComputeInvocationsPerWorkgroup",
                                                   "maxComputeWorkgroupStorageSize",
                                                   "maxComputeWorkgroupsPerDimension")},
        "inputs": top["inputs"], "outputs": top["outputs"], "pool": top["pool"],
        "weights": {"format": weight_format, "shards": shards, "tensors": weights},
        "loaded": loaded,
        "load": top["load"], "kernels": top["kernels"],
        "files": dict(sorted(files.items())),
    }
    if wasm is not None:
        manifest["wasm"] = wasm
    if dynamic is not None:
        manifest["dynamic"] = dynamic
    if ref is not None:
        manifest["reference"] = ref
    return manifest


def _json(obj) -> str:
    """JSON in ASCII, with <, > and & escaped too: the manifest stays inert even if pasted into HTML."""
    text = json.dumps(obj, indent=1, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _tensor(plan: Plan, name: str) -> dict:
    dtype = plan.dtypes[name]
    if dtype not in DEVICE_DTYPE:
        raise WebjitError(f"tensor '{name}' has type {dtype}; webjit handles float32, int64, int32, bool")
    return {"name": name, "dtype": dtype, "deviceDtype": DEVICE_DTYPE[dtype], "shape": list(plan.shapes[name])}


def _output_source(plan: Plan, name: str, input_index: dict, consts: dict) -> dict:
    if name in consts:
        return {"const": consts[name]}
    if name in input_index:
        return {"input": input_index[name]}
    b, size = plan.slots[name]
    return {"pool": b, "bytes": int(size)}


# -- the destination -----------------------------------------------------------------------------------------------
def _check_replaceable(out: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier bundle."""
    if not out.exists():
        return
    if not out.is_dir():
        raise WebjitError(f"{out}: exists and is not a folder")
    if any(out.iterdir()) and not _is_bundle(out):
        raise WebjitError(f"{out}: exists and is not a webjit bundle; refusing to replace it")


def _is_bundle(path: Path) -> bool:
    try:
        return json.loads((path / "manifest.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False
