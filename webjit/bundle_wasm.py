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
from dataclasses import replace

import wasmtime

from .errors import WebjitError
from .plan import Plan
from .render_wasm import ALIGN, HEADER, MAX_THREADS, PAGE, layout, render_module, used_weights
from .space import ceil_div
from .space_wasm import REGISTERS, retarget

FORMS = [(simd, shared) for simd in ("relaxed", "fixed") for shared in (False, True)]


def write_wasm(plans: list[Plan], writer, weights: list[dict], indices: list[dict[str, int]]
               ) -> tuple[dict, list[dict]]:
    """Write the modules of every shape class through `writer` (bundle._Writer); return the manifest's `wasm`
    section (for the last, largest class) and, for each other class, its own part of it (`modules`, `inputs`,
    `outputs`). All classes share one memory: the weights (`weights`, the manifest's weight records, which
    `indices[c]` maps class c's weight names into) are placed once, and each class lays out its inputs, arena and
    scratch after them; the memory is as large as the largest class needs."""
    placed, at = {}, HEADER
    for plan, index in zip(reversed(plans), reversed(indices)):
        for name in used_weights(plan):
            if index[name] not in placed:
                placed[index[name]] = at
                at = ceil_div(at + max(plan.weights[name].nbytes, 4), ALIGN) * ALIGN
    forms, lays = [], []
    for plan, index in zip(plans, indices):
        retargeted = {simd: retarget(plan, REGISTERS, simd == "relaxed") for simd in ("relaxed", "fixed")}
        own = {n: placed[index[n]] for n in used_weights(plan)}
        by_simd = {simd: layout(p, MAX_THREADS, own, at) for simd, p in retargeted.items()}
        if by_simd["fixed"] != by_simd["relaxed"]:
            raise WebjitError("internal: the relaxed and fixed SIMD forms of the plan lay out memory differently")
        forms.append(retargeted)
        lays.append(by_simd["relaxed"])
    size = max(lay.size for lay in lays)
    sections = []
    for plan, retargeted, lay in zip(plans, forms, lays):
        lay = replace(lay, size=size)
        modules = []
        for simd, shared in FORMS:
            p = retargeted[simd]
            binary = wasmtime.wat2wasm(render_module(p, {k.name: k.default() for k in p.kernels}, lay, shared))
            path = writer.write(f"wasm/{hashlib.sha256(binary).hexdigest()}.wasm", bytes(binary))
            modules.append({"simd": simd, "shared": shared, "file": path})
        sections.append({
            "modules": modules,
            "inputs": [lay.offsets[n] for n in plan.inputs],
            "outputs": [lay.offsets[n] if n in plan.slots and n not in plan.consts and n not in plan.inputs
                        else None for n in plan.outputs],
        })
    top = sections[-1]
    return ({"pages": ceil_div(size, PAGE), "maxThreads": MAX_THREADS,
             "registers": REGISTERS, "modules": top["modules"],
             "weights": [{"tensor": t, "offset": o} for t, o in sorted(placed.items(), key=lambda e: e[1])],
             "inputs": top["inputs"], "outputs": top["outputs"]}, sections[:-1])
