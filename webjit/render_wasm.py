"""Stage 5 (WebAssembly SIMD): render a KernelSpec and one of its variants to a WAT function; a plan to one module.

The CPU half of webjit. Kernels take the same KernelSpecs as the WebGPU backend (lowering, fusion and the plan are
shared); only rendering and execution differ.

ABI. A kernel is a function `(param $t i32) (param $nt i32)`: thread t of nt does units [t*U/nt, (t+1)*U/nt) of
the kernel's U work units (vectors, rows, panels of output columns, blocks of query rows). Every buffer lives in one
linear memory at a byte offset fixed at render time (`layout`): weights and what the load-time kernels write,
inputs and the plan's arena of pool buffers, then a scratch area per thread. The memory is imported ("env",
"memory"), so the host (or a browser) writes the weights once and instances of any module of the plan share them.

One module per plan. `module` puts every kernel of the plan in one module with `run(t, nt)`, which calls them in
order with a barrier after each, and `load(t, nt)`, which does the same for the load-time kernels (`Plan.load`:
called once, before the first run; `run` leaves them out): one compile and one call per forward pass, and in a
browser each Web Worker calls `run(t, nt)` on a shared WebAssembly.Memory (the barrier spins on atomics at byte 0;
single-threaded modules get an empty barrier and import an unshared memory). Tuning swaps one kernel at a time, so
a kernel can also be rendered into a module of its own (same text, same offsets) and timed without recompiling the
rest.

The backend's facts are tables: how a dtype is held in lanes, and what WAT each elementwise op becomes. Templates in
templates_wasm/ hold the WAT; this module computes what they substitute: byte offsets, strides, collapsed loop
nests, tiles. Nothing from the model reaches the source: identifiers are generated, numbers formatted here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .errors import UnsupportedOp
from .lower import KernelSpec
from .plan import Plan, nbytes
from .render_wasm_kinds import KINDS, form
from .space import Variant, ceil_div, round_up
from .space_wasm import i8_row
from .wasm_code import TYPES

TEMPLATES = Path(__file__).parent / "templates_wasm"
CACHE_LINE = 64     # every buffer of the linear memory starts on one
HEADER = 64         # bytes 0-7: the barrier's arrival count and generation; byte 8: 1 once a thread gave up
BARRIER_TIMEOUT_S = 60  # a thread waiting this long at the barrier between kernels traps (see module.wat.j2)
MAX_THREADS = 16    # threads the scratch area serves
PAGE = 65536

# -- memory layout --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where every buffer of a plan lives in the linear memory (byte offsets), and the per-thread scratch area."""
    offsets: dict[str, int]
    scratch: int
    scratch_per_thread: int
    threads: int
    size: int

    @property
    def pages(self) -> int:
        return ceil_div(self.size, PAGE)


def _align(x: int) -> int:
    return round_up(x, CACHE_LINE)


def used_weights(plan: Plan) -> list[str]:
    """The weights the kernels read, in the order they first read them."""
    return list(dict.fromkeys(n for k in plan.kernels for n in k.inputs if n in plan.weights))


def held(plan: Plan) -> dict[str, int]:
    """The buffers that live as long as the memory, with their bytes: the weights the kernels read, in the order
    they first read them, then what the load-time kernels write."""
    return {**{n: plan.weights[n].nbytes for n in used_weights(plan)}, **plan.loaded}


def layout(plan: Plan, threads: int = MAX_THREADS, placed: dict[str, int] | None = None,
           start: int | None = None) -> Layout:
    """The held buffers (weights in the order the kernels first read them, then what the load-time kernels write),
    then inputs, then the arena's pool buffers (values share them as the plan decided), then scratch sized for the
    most any variant of any kernel in the plan's spaces needs. The same plan always gets the same layout.

    placed, start: the held buffers are already placed (name -> offset, by plans of other shapes sharing the memory)
    and the plan's own buffers start at `start`."""
    offsets, at = {}, HEADER
    if placed is not None:
        offsets.update({n: placed[n] for n in held(plan)})
        at = _align(start)
    else:
        for name, size in held(plan).items():
            offsets[name], at = at, _align(at + max(size, 4))
    for name in plan.inputs:
        offsets[name], at = at, _align(at + nbytes(plan.shapes[name]))
    pool = []
    for size in plan.pool:
        pool.append(at)
        at = _align(at + size)
    offsets.update({name: pool[b] for name, (b, _) in plan.slots.items()})
    per_thread = _align(max([scratch_bytes(k, v) for k in plan.kernels for v in k.space] + [0]))
    return Layout(offsets, at, per_thread, threads, at + per_thread * threads + CACHE_LINE)


def scratch_bytes(spec: KernelSpec, variant: Variant) -> int:
    """Per-thread scratch: the packed block of B (matmul) or the block's sums (its gemv form), the score rows
    (attention)."""
    v, p = variant.v, spec.params
    if spec.kind == "matmul" and v.get("dot"):  # the byte planes of A's block (two: its halves; one: whole bytes)
        return (1 if v["dot"] == 2 else 2) * p["M"] * i8_row(p, v)
    if spec.kind == "matmul" and "NB" in v:
        return 4 * v["NB"] + 16
    if spec.kind == "matmul":
        rows = min(v["KB"], p["K"])
        if (p.get("quant") or {}).get("aint"):  # B in groups of 4 rows, packed a group at a time
            rows = round_up(rows, 4)
        return 16 * v["NR"] * rows
    if spec.kind == "attention":
        return 16 * v["BQ"] * ceil_div(p["N"], 4)
    return 0


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def function_name(spec: KernelSpec) -> str:
    return spec.name or spec.kind


def render(spec: KernelSpec, variant: Variant, dtypes: dict[str, str], lay: Layout, fname: str | None = None) -> str:
    """WAT text of one kernel function for one variant. dtypes: the dtype of every buffer the kernel binds.
    fname: the function's name (default: the kernel's)."""
    for d in list(spec.inputs) + list(spec.outputs):
        if dtypes[d] not in TYPES:
            raise UnsupportedOp(f"node '{spec.node}': tensors of type {dtypes[d]} are not supported "
                                f"(webjit handles float32, int64, int32, bool)")
    inb = [lay.offsets[n] for n in spec.inputs]
    outb = [lay.offsets[n] for n in spec.outputs]
    kind = form(spec.kind, variant.v)
    p = KINDS[kind](spec.params, variant.v, inb, outb)
    return _env().get_template(f"{kind}.wat.j2").render(
        **p, **variant.v, fname=fname or function_name(spec), scratch=lay.scratch,
        scratch_per_thread=lay.scratch_per_thread)


def module(functions: list[str], names: list[str], lay: Layout, shared: bool = False,
           barrier_timeout_s: float = BARRIER_TIMEOUT_S, load: int = 0) -> str:
    """One module: the math helpers, the barrier, the kernel functions, load(t, nt) calling the first `load` of
    `names` in order and run(t, nt) calling the rest."""
    return _env().get_template("module.wat.j2").render(pages=lay.pages, shared=shared, functions=functions,
                                                       names=names, load=load,
                                                       timeout_ns=int(barrier_timeout_s * 1e9))


def render_module(plan: Plan, variants: dict[str, Variant], lay: Layout, shared: bool = False,
                  barrier_timeout_s: float = BARRIER_TIMEOUT_S) -> str:
    """Stage entry point: the whole plan as one WAT module."""
    funcs = [render(k, variants[k.name], plan.dtypes, lay) for k in plan.kernels]
    return module(funcs, [function_name(k) for k in plan.kernels], lay, shared, barrier_timeout_s, plan.load)


def render_tunable_module(plan: Plan, candidates: dict[str, list[Variant]], lay: Layout, select: int,
                          shared: bool = False, functions: tuple[list[str], list[str]] | None = None) -> str:
    """The whole plan as one WAT module holding several variants of each kernel, for tuning on the client.

    Every candidate is a function in one table, kernel by kernel in plan order and each kernel's candidates in
    order (kernel k's candidate v is entry base_k + v, base_k the number of candidates of the kernels before it).
    The 32-bit word at `select + 4 k` of the memory holds the table entry kernel k runs: the caller writes it
    before the first run and whenever a choice changes. Exports `load(t, nt)`, the load-time kernels (call it once,
    before the first run), `run(t, nt)`, the other kernels of the plan, and `steps(k, reps, t, nt)`, which runs
    kernel k `reps` times (reps >= 1) with a barrier after each, to time it.
    functions: `tunable_functions(plan, candidates, lay)` when already rendered (the shared and unshared forms
    of a module have the same kernel functions)."""
    funcs, entries = functions or tunable_functions(plan, candidates, lay)
    return _env().get_template("module.wat.j2").render(
        pages=lay.pages, shared=shared, functions=funcs, names=[function_name(k) for k in plan.kernels],
        load=plan.load, table=entries, select=select, timeout_ns=BARRIER_TIMEOUT_S * 10 ** 9)


def tunable_functions(plan: Plan, candidates: dict[str, list[Variant]], lay: Layout) -> tuple[list[str], list[str]]:
    """The WAT functions of every candidate of every kernel, and their table entries' names."""
    funcs, entries = [], []
    for k in plan.kernels:
        for i, v in enumerate(candidates[k.name]):
            entries.append(f"{function_name(k)}_v{i}")
            funcs.append(render(k, v, plan.dtypes, lay, fname=entries[-1]))
    return funcs, entries
