"""The lite tuning space of the WebAssembly-SIMD backend: a literal list per kernel kind, and the rules that prune it.

The CPU counterpart of `space.py`. The same KernelSpecs run here; only the tunables differ. Each list is pruned by
the shape (no tile much wider than the problem), by the register file (`REGISTERS` v128 registers: 16 on x86-64,
32 on AArch64) and by the L1 working set (`L1_BYTES`). What survives is timed at load time, like the GPU space.

Every variant of a kernel with a multiply-accumulate inner loop (matmul, attention) exists twice: `relaxed1` uses
`f32x4.relaxed_madd` (one fused instruction where the CPU has FMA), `relaxed0` uses `f32x4.mul` + `f32x4.add` and
runs on engines without relaxed SIMD. Other kinds have no multiply-accumulate loop and only the `relaxed0` form.
"""
from __future__ import annotations

from dataclasses import replace
from itertools import zip_longest

from .tensor import prod

from .space import Variant, ceil_div, round_up

REGISTERS = 16      # v128 registers on x86-64 (xmm0-15); AArch64 has 32
L1_BYTES = 32768    # L1 data cache the inner loops plan for

# --- matmul: MR rows x NR v128 columns of accumulators, K blocks of KB, the k loop unrolled U times (with U = 4 and
# A contiguous along K, four k of a row of A are read as one vector and each lane broadcast by a shuffle). -------
# The default is U = 1, for browsers (they run it until load-time tuning has timed the first few variants): V8
# turns each broadcast load into one vbroadcastss and keeps the 6 x 2 tile near the SIMD peak, where the shuffled
# U = 4 form spills (MiniLM's shapes in Chromium: 55-60 against 38-42 GFLOP/s). wasmtime (Cranelift) prefers U = 4;
# tuning finds it there.
WASM_MATMUL_TILES = [(1, 4), (2, 4), (4, 2), (4, 3), (6, 2), (8, 1), (4, 4), (6, 4), (8, 3)]
WASM_MATMUL_KB = [128, 512]
WASM_MATMUL_UNROLL = [1, 4]
# Kept if the MR*NR accumulators + NR columns of B + 1 broadcast row element of A fit the registers; the packed
# block of B (KB x 4NR) plus the strip of A (MR x KB) fit L1; the tile is no more than twice the padded problem;
# and, among K blocks that cover all of K, only the smallest.

# --- matmul, integer form (matmul_i8.wat.j2): a matmul of uint8 A and int8 B (MatMulInteger with constant weights)
# also has a form that sums byte products with i32x4.relaxed_dot_i8x16_i7x16_add_s, 16 a step; it comes first for
# such kernels, in the relaxed SIMD form only. dot 1: A's bytes split in halves, two accumulators a tile element.
# dot 2: where the engine's relaxed dot reads its second operand as unsigned bytes exactly (V8 with AVX-VNNI; the
# runtime checks), A's bytes whole, one accumulator. B lies in panels of 16 columns (fuse/quant_pack.grouped), so
# NR divides 4, in these and in the float forms of such kernels.
WASM_I8_TILES = {1: [(1, 4), (2, 2), (6, 1), (4, 1), (3, 1), (2, 1)], 2: [(2, 4), (4, 2), (6, 2), (5, 2), (3, 2)]}
WASM_I8_KB = [256, 1024]
WASM_I8_PLANES = 1 << 20  # the byte planes of A's K block (M x KB each) stay within this many bytes
# Kept if the accumulators + NR columns of B + the broadcast bytes of A fit the registers but one (V8 keeps one v128
# register for itself: the 3 x 2 dot 1 tile, which needs all 16, spilled and ran 2.0 against 1.1 ms for 1 x 4 at
# 128 x 384 x 1536); and, among K blocks that cover all of K, only the smallest.

# --- gemv: a matmul of one row (decode steps) also has the form of gemv.wat.j2, blocks of NB columns whose sums
# wait in scratch while B streams through row by row; it comes first for such kernels. Kept if B is contiguous
# along n and unquantized, and the block is no more than twice the padded N.
WASM_GEMV_BLOCKS = [1024, 256, 128, 64]  # NB
WASM_GEMV_ROWS = [8, 16]                  # R
GEMV_UNITS = 6  # the default NB leaves at least this many blocks where it can: work for 2 to 6 threads
# R rows per step: R broadcast elements of A + the sum + a row vector of B in registers (16 spills a few on x86-64,
# which still beats 8 when B is wide: lm_head of GPT-2 in wasmtime, 3.5 against 4.4 ms). Blocks: the widest
# streams B best on one thread (lm_head: NB 1024 against 64, 3.6 against 9.5 ms), narrower ones split a narrow
# N between threads.

# --- attention: BQ query rows share each load of K and V; EV v128 columns of the output per pass over V. --------
WASM_ATTENTION_TILES = [(1, 4), (2, 4), (1, 8), (2, 8), (4, 2), (4, 4)]
# Kept if the scores (BQ rows x 4 keys) + 4 key vectors + 1 query vector fit the registers, and so do the
# BQ x EV output accumulators + BQ vectors of 4 weights + BQ broadcast weights + 1 value vector; BQ no more than
# twice the query rows.

# --- everything else: U vectors per loop step (independent accumulators for the row reductions). --------------
WASM_UNROLL = {"elementwise": [1, 4], "concat": [1, 4], "norm": [1, 4], "softmax": [1, 4]}
# Kept if a row or output holds at least U * 4 elements. Kinds not listed (gather, gather_elements, gather_nd,
# cumsum, reduce) have one variant.


def _variant(registers: int = 0, **values) -> Variant:
    return Variant(tuple(sorted(values.items())), (1, 1, 1), 1, 0, registers)


def _pad(x: int, to: int) -> int:
    return max(to, round_up(x, to))


def matmul_space(m: int, n: int, k: int, registers: int = REGISTERS) -> list[Variant]:
    out = []
    for mr, nr in WASM_MATMUL_TILES:
        regs = mr * nr + nr + 1
        if regs > registers or mr > 2 * _pad(m, 4) or 4 * nr > 2 * _pad(n, 4):
            continue
        blocks = [kb for kb in WASM_MATMUL_KB if 4 * kb * (4 * nr + mr) <= L1_BYTES]
        covering = [kb for kb in blocks if kb >= k]
        blocks = [kb for kb in blocks if kb < k] + covering[:1]
        for kb in blocks:
            for u in WASM_MATMUL_UNROLL:
                out += [_variant(regs, MR=mr, NR=nr, KB=kb, U=u, relaxed=r) for r in (1, 0)]
    return out


def i8_row(p: dict, v: dict) -> int:
    """Bytes per row of matmul_i8's A planes: the K block, rounded up to 16."""
    return round_up(min(v["KB"], p["K"]), 16)


def i8_space(p: dict, registers: int = REGISTERS, unsigned_dot: bool = False) -> list[Variant]:
    """The integer forms of a matmul of uint8 A and int8 B, the default first (dot 1); with unsigned_dot, the dot 2
    forms too, taking turns with the dot 1 ones, so that a bundle's first few candidates hold both kinds and an
    engine without the unsigned dot still has a choice."""
    q = p.get("quant")
    if not q or not q.get("aint") or q["bits"] != 8 or not q["signed"] or q["scale"] is not None or q["zp"] is not None:
        return []
    m, n, k = p["M"], p["N"], p["K"]
    forms = {}
    for dot in (1, 2) if unsigned_dot else (1,):
        planes = 2 if dot == 1 else 1  # A's halves, or its bytes whole
        forms[dot] = []
        for mr, nr in WASM_I8_TILES[dot]:
            regs = planes * mr * nr + nr + planes
            if regs >= registers or mr > 2 * _pad(m, 4) or 4 * nr > 2 * _pad(n, 4):
                continue
            blocks = [kb for kb in WASM_I8_KB if planes * m * min(kb, k) <= WASM_I8_PLANES] or WASM_I8_KB[:1]
            covering = [kb for kb in blocks if kb >= k]
            blocks = [kb for kb in blocks if kb < k] + covering[:1]
            forms[dot] += [_variant(regs, dot=dot, MR=mr, NR=nr, KB=kb, relaxed=1) for kb in blocks]
    return [v for pair in zip_longest(*forms.values()) for v in pair if v is not None]


def gemv_space(p: dict) -> list[Variant]:
    """The gemv forms of a one-row matmul, the default first: the widest block that leaves GEMV_UNITS blocks (the
    narrowest where none does), R = 8."""
    if p["M"] != 1 or p.get("quant") is not None or p["b"]["access"].strides[-1] != 1:
        return []
    n = p["N"]
    blocks = [nb for nb in WASM_GEMV_BLOCKS if nb <= 2 * _pad(n, 4)] or WASM_GEMV_BLOCKS[-1:]
    first = next((nb for nb in blocks if ceil_div(n, nb) >= GEMV_UNITS), blocks[-1])
    order = [first] + [nb for nb in blocks if nb != first]
    return [_variant(r + 2, NB=nb, R=r, relaxed=x) for nb in order for r in WASM_GEMV_ROWS for x in (1, 0)]


def attention_space(m: int, registers: int = REGISTERS) -> list[Variant]:
    out = []
    for bq, ev in WASM_ATTENTION_TILES:
        regs = max(4 * bq + 5, bq * ev + 2 * bq + 1)
        if regs <= registers and bq <= 2 * max(m, 1):
            out += [_variant(regs, BQ=bq, EV=ev, relaxed=r) for r in (1, 0)]
    return out


def _work(spec) -> int:
    """Elements one loop of the kernel walks: the row length (or the rows side by side), else the output size."""
    p = spec.params
    if spec.kind in ("norm", "softmax"):
        return p["length"] if p["inner"] == 1 else p["inner"]
    return prod(p["shape"])


FLOAT_DEFAULT = {"MR": 6, "NR": 2, "KB": 512, "U": 1}  # the float matmul's default tile (NR divides 4: q8's too)


def space(spec, registers: int = REGISTERS, relaxed: bool = True, unsigned_dot: bool = False) -> tuple[Variant, ...]:
    """The WebAssembly variants of one kernel, default first. relaxed=False keeps only the fixed-SIMD forms;
    unsigned_dot adds the integer matmul forms that need an engine whose relaxed dot reads its second operand as
    unsigned bytes (dot 2), right after the default."""
    p = spec.params
    if spec.kind == "matmul":
        gemv, i8 = gemv_space(p), i8_space(p, registers, unsigned_dot)
        out = gemv + i8 + matmul_space(p["M"], p["N"], p["K"], registers)
        if (p.get("quant") or {}).get("aint"):  # B in panels of 16 columns (quant_pack.grouped): NR divides 4
            out = [v for v in out if 4 % v.v["NR"] == 0]
        default = ({"NB": gemv[0].v["NB"], "R": gemv[0].v["R"]} if gemv else dict(i8[0].v) if i8 and relaxed else
                   FLOAT_DEFAULT)
    elif spec.kind == "attention":
        out = attention_space(p["M"], registers)
        default = {"BQ": 2, "EV": 4}
    elif spec.kind in WASM_UNROLL:
        work = _work(spec)
        out = [_variant(4, U=u, relaxed=0) for u in WASM_UNROLL[spec.kind] if u == 1 or work >= 4 * u]
        default = {"U": 4}
    else:
        out, default = [_variant(4, U=1, relaxed=0)], {}
    if not relaxed:
        out = [v for v in out if not v.v["relaxed"]]

    def rank(v: Variant):  # the integer forms keep their order, ahead of the float ones (nearest their default)
        d = v.v
        near = FLOAT_DEFAULT if default.get("dot") else default
        return (not d["relaxed"]) == relaxed, not d.get("dot"), 0 if d.get("dot") else sum(
            d.get(k) != x for k, x in near.items())
    return tuple(sorted(out, key=rank))


def retarget(plan, registers: int = REGISTERS, relaxed: bool = True, unsigned_dot: bool = False):
    """The plan with each kernel's tuning space replaced by its WebAssembly space (kernels and buffers as they are),
    so that tuning and validation code written against `KernelSpec.space` works unchanged for this backend."""
    return replace(plan, kernels=[replace(k, space=space(k, registers, relaxed, unsigned_dot)) for k in plan.kernels])
