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

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .errors import UnsupportedOp
from .lower import KernelSpec
from .plan import Plan, nbytes
from .space import Variant, ceil_div
from .space_wasm import i8_row
from .tensor import f32

TEMPLATES = Path(__file__).parent / "templates_wasm"
ALIGN = 64          # every buffer starts on a cache line
HEADER = 64         # bytes 0-7: the barrier's arrival count and generation; byte 8: 1 once a thread gave up
BARRIER_TIMEOUT_S = 60  # a thread waiting this long at the barrier between kernels traps (see module.wat.j2)
MAX_THREADS = 16    # threads the scratch area serves
PAGE = 65536

# dtype -> how its lanes are held: f32, i32, or bool (a lane mask, stored as 0/1 in 4 bytes)
TYPES = {"float32": "f32", "int64": "i32", "int32": "i32", "bool": "bool", "int8": "i32", "uint8": "i32", "uint32": "i32"}

ZERO, ONE_F, ONE_I = "(v128.const i32x4 0 0 0 0)", "(v128.const f32x4 1 1 1 1)", "(v128.const i32x4 1 1 1 1)"
# One line per op over v128 operands {0}, {1}, {2}; {a[...]}: attributes (as vectors). By operand type.
FLOAT = {
    "Identity": "{0}", "Neg": "(f32x4.neg {0})", "Abs": "(f32x4.abs {0})", "Sqrt": "(f32x4.sqrt {0})",
    "Exp": "(call $exp {0})", "Log": "(call $log {0})", "Erf": "(call $erf {0})", "Tanh": "(call $tanh {0})",
    "Sigmoid": "(call $sigmoid {0})", "Relu": f"(f32x4.pmax {{0}} {ZERO})", "Reciprocal": f"(f32x4.div {ONE_F} {{0}})",
    "Sin": "(call $sincos {0} (i32.const 0))", "Cos": "(call $sincos {0} (i32.const 1))",
    "Floor": "(f32x4.floor {0})", "Ceil": "(f32x4.ceil {0})", "Round": "(f32x4.nearest {0})",
    "Sign": "(call $sign {0})", "Softplus": "(call $softplus {0})",
    "Mish": "(f32x4.mul {0} (call $tanh (call $softplus {0})))",
    "Add": "(f32x4.add {0} {1})", "Sub": "(f32x4.sub {0} {1})", "Mul": "(f32x4.mul {0} {1})",
    "Div": "(f32x4.div {0} {1})", "Pow": "(call $pow {0} {1})", "Max": "(f32x4.max {0} {1})",
    "Min": "(f32x4.min {0} {1})",
    "LeakyRelu": f"(v128.bitselect {{0}} (f32x4.mul {{0}} {{a[alpha]}}) (f32x4.ge {{0}} {ZERO}))",
    "Elu": f"(v128.bitselect {{0}} (f32x4.mul {{a[alpha]}} (f32x4.sub (call $exp {{0}}) {ONE_F})) (f32x4.ge {{0}} {ZERO}))",
    "HardSigmoid": f"(f32x4.min (f32x4.max (f32x4.add (f32x4.mul {{a[alpha]}} {{0}}) {{a[beta]}}) {ZERO}) {ONE_F})",
    "HardSwish": f"(f32x4.mul {{0}} (f32x4.min (f32x4.max (f32x4.add (f32x4.div {{0}} (v128.const f32x4 6 6 6 6)) "
                 f"(v128.const f32x4 0.5 0.5 0.5 0.5)) {ZERO}) {ONE_F}))",
    "IsNaN": "(f32x4.ne {0} {0})",
    "Equal": "(f32x4.eq {0} {1})", "Less": "(f32x4.lt {0} {1})", "Greater": "(f32x4.gt {0} {1})",
    "LessOrEqual": "(f32x4.le {0} {1})", "GreaterOrEqual": "(f32x4.ge {0} {1})",
}
INT = {
    "Identity": "{0}", "Neg": "(i32x4.neg {0})", "Abs": "(i32x4.abs {0})", "Add": "(i32x4.add {0} {1})",
    "Sub": "(i32x4.sub {0} {1})", "Mul": "(i32x4.mul {0} {1})", "Div": "(call $idiv {0} {1})",
    "Max": "(i32x4.max_s {0} {1})", "Min": "(i32x4.min_s {0} {1})",
    "Pow": "(call $ipow {0} {1})",
    "Sign": f"(i32x4.sub (i32x4.lt_s {{0}} {ZERO}) (i32x4.gt_s {{0}} {ZERO}))",
    "Equal": "(i32x4.eq {0} {1})", "Less": "(i32x4.lt_s {0} {1})", "Greater": "(i32x4.gt_s {0} {1})",
    "LessOrEqual": "(i32x4.le_s {0} {1})", "GreaterOrEqual": "(i32x4.ge_s {0} {1})",
}
BOOL = {"Identity": "{0}", "Not": "(v128.not {0})", "And": "(v128.and {0} {1})", "Or": "(v128.or {0} {1})",
        "Xor": "(v128.xor {0} {1})", "Equal": "(i32x4.eq {0} {1})"}
ANY = {"Where": "(v128.bitselect {1} {2} {0})"}
CAST = {("f32", "i32"): "(i32x4.trunc_sat_f32x4_s {0})", ("i32", "f32"): "(f32x4.convert_i32x4_s {0})",
        ("bool", "f32"): f"(v128.and {{0}} {ONE_F})", ("bool", "i32"): f"(v128.and {{0}} {ONE_I})",
        ("f32", "bool"): f"(f32x4.ne {{0}} {ZERO})", ("i32", "bool"): f"(i32x4.ne {{0}} {ZERO})"}
GELU = {"none": "(call $gelu {0})", "tanh": "(call $gelu_tanh {0})"}
VARIADIC = {"Sum": "Add", "Max": "Max", "Min": "Min", "Mean": "Add"}
CLIP = {"f32": ("f32x4.pmax", "f32x4.pmin"), "i32": ("i32x4.max_s", "i32x4.min_s")}  # pmax(x, lo): NaN stays
# Clip's bounds when it has none: onnxruntime clamps floats to the finite range (inf becomes FLT_MAX)
CLIP_DEFAULT = {"f32": (-3.4028234663852886e+38, 3.4028234663852886e+38), "i32": (None, None)}
# Mod: the remainder with the dividend's sign (C fmod; a finite x mod inf is x) by operand type, then, for fmod=0, the
# step to the divisor's sign (Python %) from that remainder {0} and the divisor {1}
_INF, _ABS = "(v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)", "(v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)"
FMOD = {"f32": f"(v128.bitselect {{0}} (f32x4.sub {{0}} (f32x4.mul (f32x4.trunc (f32x4.div {{0}} {{1}})) {{1}})) "
               f"(v128.and (i32x4.eq (v128.and {{1}} {_ABS}) {_INF}) (i32x4.lt_s (v128.and {{0}} {_ABS}) {_INF})))",
        "i32": "(call $irem {0} {1})"}
MOD_SIGN = {"f32": f"(v128.bitselect (f32x4.add {{0}} {{1}}) {{0}} (v128.and (f32x4.ne {{0}} {ZERO}) "
                   f"(v128.xor (f32x4.lt {{0}} {ZERO}) (f32x4.lt {{1}} {ZERO}))))",
            "i32": f"(v128.bitselect (i32x4.add {{0}} {{1}}) {{0}} (v128.and (v128.not (i32x4.eq {{0}} {ZERO})) "
                   f"(v128.xor (i32x4.lt_s {{0}} {ZERO}) (i32x4.lt_s {{1}} {ZERO}))))"}
# reduce op -> (identity for f32, identity for i32, lane op per type, horizontal helper per type, what each loaded
# vector {0} becomes per type, the result from the reduced scalar {0}; None: not for that type)
_SQ, _DIV = ("(f32x4.mul {0} {0})", "(i32x4.mul {0} {0})"), ("(f32.div {0} (f32.const {n}))", "(i32.div_s {0} (i32.const {n}))")
REDUCE = {"sum": (0.0, 0, ("f32x4.add", "i32x4.add"), ("hsum", "hsum_i"), None, None),
          "mean": (0.0, 0, ("f32x4.add", "i32x4.add"), ("hsum", "hsum_i"), None, _DIV),
          "max": (-math.inf, -2**31, ("f32x4.max", "i32x4.max_s"), ("hmax", "hmax_i"), None, None),
          "min": (math.inf, 2**31 - 1, ("f32x4.min", "i32x4.min_s"), ("hmin", "hmin_i"), None, None),
          "prod": (1.0, 1, ("f32x4.mul", "i32x4.mul"), ("hmul", "hmul_i"), None, None),
          "sum_square": (0.0, 0, ("f32x4.add", "i32x4.add"), ("hsum", "hsum_i"), _SQ, None),
          "l1": (0.0, 0, ("f32x4.add", "i32x4.add"), ("hsum", "hsum_i"), ("(f32x4.abs {0})", "(i32x4.abs {0})"), None),
          "l2": (0.0, None, ("f32x4.add", None), ("hsum", None), _SQ, ("(f32.sqrt {0})", None)),
          "log_sum": (0.0, None, ("f32x4.add", None), ("hsum", None), None,
                      ("(f32x4.extract_lane 0 (call $log (f32x4.splat {0})))", None)),
          # $mv: the largest element in every lane, from a first pass
          "log_sum_exp": (0.0, None, ("f32x4.add", None), ("hsum", None), ("(call $exp (f32x4.sub {0} (local.get $mv)))", None),
                          ("(f32.add (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 0 (call $log (f32x4.splat {0}))))", None))}


def scalar(value, dtype: str) -> str:
    """A WAT literal for one lane: exact for f32 (shortest repr of the f32 value), saturated for int64."""
    t = TYPES[dtype]
    if t == "bool":
        return "-1" if value else "0"
    if t == "i32":
        return str(max(-2**31, min(2**31 - 1, int(value))))
    f = f32(value)
    return "nan" if f != f else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)


def literal(value, dtype: str) -> str:
    return f"(v128.const {'f32x4' if TYPES[dtype] == 'f32' else 'i32x4'}{(' ' + scalar(value, dtype)) * 4})"


def _type_of(arg, leaves, lines) -> str:
    if arg[0] == "acc":
        return "f32"
    if arg[0] == "x":
        return TYPES[leaves[arg[1]]["dtype"]]
    return lines[arg[1]][0] if arg[0] == "t" else TYPES[arg[2]]


def expressions(code, leaves) -> tuple[list[tuple[str, str]], bool]:
    """Elementwise code -> ([(lane type, WAT expression)], whether it reads output coordinates); line j is $t<j>."""
    lines: list[tuple[str, str]] = []
    coords = False

    for dtype, op, args, attrs in code:
        attrs = dict(attrs)
        if dtype not in TYPES:
            raise UnsupportedOp(f"elementwise {op} on {dtype}: webjit kernels handle float32, int64, int32, bool")
        out_t = TYPES[dtype]
        ops = [None if a is None else "(local.get $acc)" if a[0] == "acc" else f"(local.get ${a[0]}{a[1]})"
               if a[0] in "xt" else literal(a[1], a[2]) for a in args]
        in_t = _type_of(args[0], leaves, lines) if args and args[0] is not None else out_t
        table = {**ANY, **{"f32": FLOAT, "i32": INT, "bool": BOOL}[in_t]}
        if op in ("Cast", "CastLike"):
            expr = "{0}" if in_t == out_t else CAST[(in_t, out_t)]
        elif op == "Gelu":
            expr = GELU[attrs.get("approximate", "none")]
        elif op == "Clip":
            expr = "{0}"
            for k, (bound, attr, fn) in enumerate(zip((ops + [None, None])[1:3], ("min", "max"), CLIP[in_t])):
                if bound is None and attr in attrs:  # Clip-6: bounds as attributes
                    bound = literal(attrs[attr], dtype)
                if bound is None and CLIP_DEFAULT[in_t][k] is not None:
                    bound = literal(CLIP_DEFAULT[in_t][k], dtype)
                expr = f"({fn} {expr} {bound})" if bound else expr
        elif op == "Mod":
            expr = FMOD[in_t]
            if not attrs.get("fmod", 0):  # then the divisor's sign, from the remainder (repeated: operands are names)
                expr = MOD_SIGN[in_t].replace("{0}", expr)
        elif op == "Trilu":
            coords = True
            cmp = "i32x4.ge_s" if attrs.get("upper", 1) else "i32x4.le_s"
            expr = (f"(v128.bitselect {{0}} {ZERO} ({cmp} (i32x4.sub (local.get $cl) (local.get $cp)) "
                    f"{literal(attrs.get('k', 0), 'int32')}))")
        elif op == "IsInf":
            bits = [b for b, on in ((0x7f800000, attrs.get("detect_positive", 1)),
                                    (0xff800000 - 2**32, attrs.get("detect_negative", 1))) if on]
            expr = ZERO
            for b in bits:
                expr = f"(v128.or {expr} (i32x4.eq {{0}} {literal(b, 'int32')}))"
        elif op in VARIADIC and len(ops) != 2:
            expr = ops[0]
            for o in ops[1:]:
                expr = table[VARIADIC[op]].format(expr, o)
            if op == "Mean":
                expr = f"(f32x4.div {expr} {literal(len(ops), 'float32')})"
            lines.append((out_t, expr))
            continue
        elif op == "Pow" and in_t != _type_of(args[1], leaves, lines):  # mixed types, as the base type
            # a float exponent of an int base: exact when integral, else truncated toward zero (as onnxruntime),
            # nudged up by 2^-20 so that a power that is an integer never truncates below it
            expr = ("(v128.bitselect (call $ipow {0} (i32x4.trunc_sat_f32x4_s {1})) (i32x4.trunc_sat_f32x4_s "
                    "(f32x4.mul (call $pow (f32x4.convert_i32x4_s {0}) {1}) (v128.const f32x4 1.00000095 1.00000095 "
                    "1.00000095 1.00000095))) (f32x4.eq (f32x4.trunc {1}) {1}))"
                    if in_t == "i32" else "(call $pow {0} (f32x4.convert_i32x4_s {1}))")
        elif op == "Pow" and args[1] is not None and args[1][0] == "c" and args[1][1] in (1, 2, 3):
            expr = "{0}"
            for _ in range(int(args[1][1]) - 1):
                expr = table["Mul"].format(expr, "{0}")
        else:
            table = {**table, **({op: table[VARIADIC[op]]} if op in VARIADIC else {})}
            if op not in table:
                raise UnsupportedOp(f"elementwise {op} on {in_t} operands is not supported")
            expr = table[op]
        vec = {k: literal(v, "float32") for k, v in attrs.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
        lines.append((out_t, expr.format(*ops, a=vec)))
    return lines, coords


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
    return ceil_div(x, ALIGN) * ALIGN


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
    return Layout(offsets, at, per_thread, threads, at + per_thread * threads + ALIGN)


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
            rows = ceil_div(rows, 4) * 4
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
    from .render_wasm_kinds import KINDS, form  # per-kind substitutions; that module builds on the tables above
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
