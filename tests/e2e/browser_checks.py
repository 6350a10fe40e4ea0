"""What several browser test modules share: the tolerance against onnxruntime, the reference arrays a bundle
stores, a corrupted copy of a file, and the page body that runs a MiniLM bundle on its stored inputs."""
from __future__ import annotations

import json

import numpy as np

ATOL = 1e-4


def reference(bundle, side: str) -> dict[str, np.ndarray]:
    """The arrays the bundle stores: its sample inputs (side 'inputs') or onnxruntime's outputs for them."""
    m = json.loads((bundle / "manifest.json").read_text())
    return {t["name"]: np.frombuffer((bundle / t["file"]).read_bytes(), dtype=t["dtype"]).reshape(t["shape"])
            for t in m["reference"][side]}


def flip_byte(data: bytes) -> bytes:
    """`data` with its middle byte inverted."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


# Runs the bundle at / on its stored inputs with `options`: the provider and last_hidden_state.
RUN_REFERENCE = """async ({webjit, create}, options) => {
    const session = await create('/', options);
    const ref = await webjit.loadReference(session.bundle);
    const y = (await session.run(ref.inputs)).last_hidden_state;
    return {ep: session.executionProvider, type: y.type, dims: y.dims, data: Array.from(y.data)};
}"""
