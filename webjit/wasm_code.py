"""Elementwise code as WebAssembly SIMD expressions: how each dtype is held in v128 lanes, the WAT of each op by
operand type, the reductions' identities and lane ops, and `expressions`, which turns a kernel's code lines into WAT
over its leaves. The tables of the wasm backend's facts; render_wasm.py and render_wasm_kinds.py use them, and
ops.py checks them against the op registry."""
from __future__ import annotations

import math

from .errors import UnsupportedOp
from .tensor import f32

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
