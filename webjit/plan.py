"""Stage 6: the execution plan. Kernels in order, with every buffer they bind.

Weights and inputs get buffers of their own. Every other value lives in a pool of buffers (the arena): a value
takes a buffer when its kernel runs and gives it back after its last reader, so the pool holds only about the
peak of what is alive at once. Graph outputs keep their buffers to the end.

Kernels that read only weights (a MatMul of two weights, a Gather from a table by constant indices: work on
constants that the folder leaves to kernels) run once, when the runtime loads the plan, not on every run. They
come first in the plan (`Plan.load` of them), and what they write lives, like the weights, in buffers of its own
that no run touches (`Plan.loaded`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import WebjitError
from .ir import Graph
from .lower import KernelSpec
from .space import round_up
from .tensor import Tensor, prod

OFFSET_ALIGN = 256  # minStorageBufferOffsetAlignment on every WebGPU device: buffers and bindings start there
DEVICE_DTYPES = {"float32": "float32", "int64": "int32", "int32": "int32", "bool": "uint32",
                 "int8": "int32", "uint8": "int32", "uint32": "uint32"}  # uint32: packed quantized weights


def _device_dtype(name: str, dtype: str) -> str:
    if dtype not in DEVICE_DTYPES:
        raise WebjitError(f"tensor '{name}' has type {dtype}; webjit handles float32, int64, int32, bool")
    return DEVICE_DTYPES[dtype]


def to_device(name: str, arr: Tensor) -> Tensor:
    """A constant as the kernels store it: int64 narrows to int32, bool widens to uint32."""
    dt = _device_dtype(name, arr.dtype)
    if arr.dtype == "int64" and arr.size and not all(-2**31 <= v < 2**31 for v in arr.values()):
        raise WebjitError(f"tensor '{name}' has int64 values outside the int32 range the kernels use")
    return arr.astype(dt)


def device_inputs(plan: "Plan", feeds: dict) -> dict:
    """The plan's inputs taken from feeds (numpy arrays), checked against the compiled shapes, in device form."""
    import numpy as np
    out = {}
    for n in plan.inputs:
        if n not in feeds:
            raise WebjitError(f"missing input '{n}'")
        arr = np.asarray(feeds[n])
        if tuple(arr.shape) != plan.shapes[n]:
            raise WebjitError(f"input '{n}': shape {list(arr.shape)}, compiled for {list(plan.shapes[n])}")
        dt = _device_dtype(n, arr.dtype.name)
        if arr.dtype == np.int64 and arr.size and (arr.min() < -2**31 or arr.max() >= 2**31):
            raise WebjitError(f"tensor '{n}' has int64 values outside the int32 range the kernels use")
        out[n] = np.ascontiguousarray(arr.astype(dt))
    return out


def nbytes(shape) -> int:
    return 4 * max(1, prod(shape))


@dataclass
class Plan:
    kernels: list[KernelSpec]
    dtypes: dict[str, str]                       # dtype of every buffer a kernel binds
    shapes: dict[str, tuple]
    weights: dict[str, Tensor]                   # constants read by kernels, in device form
    inputs: list[str]
    outputs: list[str]
    consts: dict[str, Tensor] = field(default_factory=dict)  # outputs known at compile time
    slots: dict[str, tuple[int, int]] = field(default_factory=dict)  # value -> (pool buffer, bytes used)
    pool: list[int] = field(default_factory=list)                    # pool buffer sizes in bytes
    half_weights: bool = False  # the model's weights were float16 (widened by float16.py): store them so again
    load: int = 0               # the first `load` kernels run once, at load time, not on every run
    loaded: dict[str, int] = field(default_factory=dict)  # what they write -> bytes: a buffer of its own each

    @property
    def arena_bytes(self) -> int:
        return sum(self.pool)

    def where(self, name: str) -> str:
        """'weight', 'input', 'loaded' (written by a load-time kernel) or 'arena'."""
        return ("weight" if name in self.weights else "input" if name in self.inputs
                else "loaded" if name in self.loaded else "arena")

    def gather_outputs(self, feeds: dict, read) -> dict:
        """The graph outputs (numpy arrays): compile-time constants, inputs passed through, and read(name) for the
        rest."""
        import numpy as np
        return {o: np.asarray(self.consts[o]) if o in self.consts else np.asarray(feeds[o]) if o in self.inputs
                else read(o) for o in self.outputs}

    def summary(self) -> str:
        w = sum(a.nbytes for a in self.weights.values())
        once = f" ({self.load} once, at load)" if self.load else ""
        return (f"{len(self.kernels)} kernels{once}, weights {w / 2**20:.1f} MiB, "
                f"intermediate arena {self.arena_bytes / 2**20:.2f} MiB (peak, with reuse)")


def _place(kernels: list[KernelSpec], sizes: dict[str, int], keep: set[str], reuse: bool):
    """Assign each value a pool buffer. A buffer is free again after the last kernel that reads its value, and is
    reused by the next value that fits it best. (Values share buffers, never ranges of one buffer: WebGPU forbids
    binding one buffer both read-only and writable in a dispatch.)"""
    last = {}
    for i, k in enumerate(kernels):
        for name in k.inputs:
            last[name] = i
    pool: list[int] = []      # buffer sizes in bytes
    free: list[int] = []      # indices of free buffers
    slots: dict[str, tuple[int, int]] = {}
    for i, k in enumerate(kernels):
        for name in k.outputs:
            if name not in sizes or name in slots:
                continue
            size = round_up(sizes[name], OFFSET_ALIGN)
            fitting = [b for b in free if pool[b] >= size]
            if fitting:
                b = min(fitting, key=lambda b: pool[b])
                free.remove(b)
            else:
                b = len(pool)
                pool.append(size)
            slots[name] = (b, sizes[name])
        if reuse:
            for name in dict.fromkeys(k.inputs + k.outputs):  # in order: a set's order varies by process
                if name in slots and last.get(name, -1) <= i and name not in keep and slots[name][0] not in free:
                    free.append(slots[name][0])
    return slots, pool


def load_time(kernels: list[KernelSpec], weights, outputs) -> set[int]:
    """The kernels that can run once, at load time: every value they read is a weight or written only by such
    kernels, and they write no graph output (a run reads its outputs from the pool). A value that several kernels
    write is load-time only when all of them are."""
    writers: dict[str, list[int]] = {}
    for i, k in enumerate(kernels):
        for o in k.outputs:
            writers.setdefault(o, []).append(i)
    load = set(range(len(kernels)))

    def constant(name: str) -> bool:
        return name in weights or name in writers and all(w in load for w in writers[name])

    changed = True
    while changed:
        changed = False
        for i, k in enumerate(kernels):
            if i in load and not (all(constant(n) for n in k.inputs)
                                  and all(o not in outputs and constant(o) for o in k.outputs)):
                load.discard(i)
                changed = True
    return load


def make_plan(g: Graph, kernels: list[KernelSpec], reuse: bool = True) -> Plan:
    """Stage entry point. reuse=False gives every value its own slot (to inspect all intermediates)."""
    values = g.values
    kernels = [k for k in kernels if all(values[o].size > 0 for o in k.outputs)]
    bound = dict.fromkeys(n for k in kernels for n in k.inputs + k.outputs)  # ordered, unlike a set
    weights = {n: to_device(n, values[n].const) for n in bound if values[n].const is not None}
    consts = {o: values[o].const for o in g.outputs if values[o].const is not None}
    # load-time kernels first (they read only weights and each other's outputs, which no other kernel writes),
    # then the rest in their order; each named by its new position
    once = load_time(kernels, weights, set(g.outputs))
    if sorted(once) != list(range(len(once))):
        ordered = [k for i, k in enumerate(kernels) if i in once] + [k for i, k in enumerate(kernels) if i not in once]
        kernels = [replace(k, name=f"k{i:02d}_{k.kind}") for i, k in enumerate(ordered)]
    loaded = {o: nbytes(values[o].shape) for k in kernels[:len(once)] for o in k.outputs}
    arena_values = {n: nbytes(values[n].shape) for n in bound
                    if n not in weights and n not in g.inputs and n not in loaded}
    for o in g.outputs:
        if o not in consts and o not in g.inputs and o not in arena_values:
            arena_values[o] = nbytes(values[o].shape)  # an empty output: no kernel writes it
    slots, pool = _place(kernels, arena_values, set(g.outputs), reuse)
    for o in g.outputs:
        if o in arena_values and o not in slots:
            slots[o] = (len(pool), arena_values[o])
            pool.append(round_up(arena_values[o], OFFSET_ALIGN))
    known = list(dict.fromkeys([*bound, *g.outputs, *g.inputs]))
    return Plan(kernels, {n: values[n].dtype for n in known},
                {n: tuple(values[n].shape) for n in known},
                weights, list(g.inputs), list(g.outputs), consts, slots, pool, load=len(once), loaded=loaded)
