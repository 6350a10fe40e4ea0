"""The weights of a bundle: every plan's weights packed into shards (`weights/shard-NNN.bin`) and the record of each
(the manifest's `weights.tensors`, web/MANIFEST.md). Called by `bundle.build_files`.

A weight starts at an OFFSET_ALIGN-aligned offset of a shard; one bigger than a shard is split into parts over whole
shards. Shards hold the weights in device form, or in an fp16 bundle float32 weights as IEEE float16 (`_stored`),
which the runtime widens back to float32 on load.
"""
from __future__ import annotations

import hashlib
import struct
from array import array

from .lower.quant import packed_weights
from .plan import OFFSET_ALIGN, Plan
from .progress import Progress
from .space import round_up
from .tensor import Tensor

WEIGHT_FORMATS = ("fp32", "fp16")  # fp16: float32 weights stored as float16 (half the bytes), widened on load


def write_weights(plans: list[Plan], writer, weight_format: str, shard_bytes: int
                  ) -> tuple[list[dict], list[dict], list[dict[str, int]]]:
    """Weights in device form (or, with weight_format "fp16", float32 ones as float16: `_stored`), in order of first
    use (by the largest class, then the others), packed into shards of at most `shard_bytes` written through
    `writer` (bundle._Writer). Classes share a weight when its name and bytes are equal (a constant folded from the
    shape differs between classes). Returns the shard records, the weight records and, per plan, name -> record
    index."""
    shards: list[bytearray] = [bytearray()]
    records: list[dict] = []
    known: dict[tuple[str, str], int] = {}
    indices: list[dict[str, int]] = [{} for _ in plans]
    for c in reversed(range(len(plans))):
        plan = plans[c]
        order = list(dict.fromkeys([n for k in plan.kernels for n in k.inputs if n in plan.weights]
                                   + sorted(plan.weights)))
        packs = packed_weights(plan.kernels)
        for name in order:
            arr = plan.weights[name]
            digest = hashlib.sha256(arr.data)  # the weight's bytes are not copied
            digest.update(repr((arr.dtype.name, arr.shape)).encode())
            key = (name, digest.hexdigest())
            if key in known:
                indices[c][name] = known[key]
                continue
            known[key] = indices[c][name] = len(records)
            stored, extra = _stored(name, arr, weight_format)
            records.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape), "bytes": arr.nbytes}
                           | extra | ({"packs": packs[name]} if name in packs else {})
                           | {"parts": _pack(stored, shards, shard_bytes)})
    bar = Progress("weights", len(shards))
    shard_records = []
    for i, shard in enumerate(shards):
        path = writer.write(f"weights/shard-{i:03d}.bin", bytes(shard))
        shard_records.append({"file": path})
        bar(i + 1)
    return shard_records, records, indices


def _stored(name: str, arr: Tensor, weight_format: str) -> tuple[bytes | memoryview, dict]:
    """A weight's bytes as the shards hold them, and what its record says about that: float32 weights of an fp16
    bundle become float16 (round to nearest even; `"stored": "float16"`, half the bytes), the rest stay as they are.
    A float32 weight with a finite value beyond float16's range (such as a -3.4e38 mask fill), which float16 would
    turn into infinity, stays float32 (no `stored`): exact, at full size."""
    if weight_format != "fp16" or arr.dtype != "float32":
        return arr.data, {}
    values, step, half = array("f", arr.tobytes()), 1 << 20, []
    try:
        for i in range(0, len(values), step):
            chunk = values[i:i + step]
            half.append(struct.pack(f"<{len(chunk)}e", *chunk))  # round to nearest even, as numpy does
    except OverflowError:  # a finite value that float16 would turn into infinity
        return arr.data, {}
    return b"".join(half), {"stored": "float16"}


def _pack(data: bytes | memoryview, shards: list[bytearray], shard_bytes: int) -> list[dict]:
    """Append one weight to the shards; its parts."""
    parts = []
    if len(data) > shard_bytes - _aligned(len(shards[-1])):
        if shards[-1]:
            shards.append(bytearray())
    start = 0
    while True:
        shard = shards[-1]
        offset = _aligned(len(shard))
        piece = data[start:start + shard_bytes - offset]
        shard.extend(b"\0" * (offset - len(shard)))
        shard.extend(piece)
        parts.append({"shard": len(shards) - 1, "offset": offset, "bytes": len(piece)})
        start += len(piece)
        if start >= len(data):
            return parts
        shards.append(bytearray())


def _aligned(n: int) -> int:
    return round_up(n, OFFSET_ALIGN)
