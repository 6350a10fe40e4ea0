"""The WebAssembly half of a bundle: the plan as WebAssembly modules and the memory layout the browser runtime
(`web/wasm/`) needs to run them. Called by `bundle.build`; the manifest section it returns is `wasm` in
web/MANIFEST.md.

Each module holds the whole plan with each kernel's default WebAssembly variant and exports `run(t, nt)`; it imports
one linear memory laid out by `render_wasm.layout` (weights, inputs, the arena, per-thread scratch for up to
MAX_THREADS threads). Four forms: relaxed SIMD (`f32x4.relaxed_madd`) or fixed SIMD (mul + add), each importing a
shared memory (Web Workers) or an unshared one (one thread, no cross-origin isolation needed).
"""
from __future__ import annotations

import hashlib

import wasmtime

from .errors import WebjitError
from .plan import Plan
from .render_wasm import MAX_THREADS, layout, render_module
from .space_wasm import REGISTERS, retarget

FORMS = [(simd, shared) for simd in ("relaxed", "fixed") for shared in (False, True)]


def write_wasm(plan: Plan, writer, weights: list[dict]) -> dict:
    """Write the plan's modules through `writer` (bundle._Writer); return the manifest's `wasm` section.
    weights: the manifest's weight records, whose order gives the weight indices."""
    plans = {simd: retarget(plan, REGISTERS, simd == "relaxed") for simd in ("relaxed", "fixed")}
    lays = {simd: layout(p, MAX_THREADS) for simd, p in plans.items()}
    lay = lays["relaxed"]
    if lays["fixed"] != lay:
        raise WebjitError("internal: the relaxed and fixed SIMD forms of the plan lay out memory differently")
    modules = []
    for simd, shared in FORMS:
        p = plans[simd]
        binary = wasmtime.wat2wasm(render_module(p, {k.name: k.default() for k in p.kernels}, lay, shared))
        path = writer.write(f"wasm/{hashlib.sha256(binary).hexdigest()}.wasm", bytes(binary))
        modules.append({"simd": simd, "shared": shared, "file": path})
    index = {w["name"]: i for i, w in enumerate(weights)}
    return {
        "pages": lay.pages, "maxThreads": MAX_THREADS, "registers": REGISTERS, "modules": modules,
        "weights": [{"tensor": index[n], "offset": o} for n, o in lay.offsets.items() if n in plan.weights],
        "inputs": [lay.offsets[n] for n in plan.inputs],
        "outputs": [lay.offsets[n] if n in plan.slots and n not in plan.consts and n not in plan.inputs else None
                    for n in plan.outputs],
    }
