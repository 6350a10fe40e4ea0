"""Stage 5 (WebGPU): render a KernelSpec and one of its variants to WGSL.

The backend's facts are tables: how each dtype is stored and held, and what WGSL expression each elementwise op
becomes. Templates in templates_wgsl/ hold the WGSL; this module only prepares what they substitute. Nothing from
the model (names, strings) reaches the source: identifiers are generated, numbers are formatted here.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import jinja2

from .errors import UnsupportedOp
from .lower import KernelSpec
from .space import Variant
from .tensor import f32, f32_bits, prod
from .views import contiguous_strides

TEMPLATES = Path(__file__).parent / "templates_wgsl"

# dtype -> (element type in the storage buffer, type of a value in registers)
TYPES = {"float32": ("f32", "f32"), "int64": ("i32", "i32"), "int32": ("i32", "i32"), "bool": ("u32", "bool"),
         "int8": ("i32", "i32"), "uint8": ("i32", "i32"), "uint32": ("u32", "u32")}

# One line per op. {0}, {1}, {2}: operands; {a[...]}: attributes; F / I: by operand type (float, int or bool).
FLOAT = {
    "Identity": "{0}", "Neg": "(-{0})", "Abs": "abs({0})", "Sqrt": "sqrt({0})", "Exp": "exp({0})",
    "Log": "log({0})", "Erf": "erf_({0})", "Tanh": "tanh(clamp({0}, -15.0f, 15.0f))",
    "Sigmoid": "(1.0f / (1.0f + exp(-{0})))", "Relu": "max({0}, 0.0f)", "Reciprocal": "(1.0f / {0})",
    "Sin": "sin({0})", "Cos": "cos({0})", "Floor": "floor({0})", "Ceil": "ceil({0})", "Round": "round({0})",
    "Sign": "sign({0})", "Softplus": "softplus_({0})", "Mish": "({0} * tanh(clamp(softplus_({0}), -15.0f, 15.0f)))",
    "Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})", "Div": "({0} / {1})",
    "Pow": "pow_({0}, {1})", "Max": "max({0}, {1})", "Min": "min({0}, {1})",
    "LeakyRelu": "select({0} * {a[alpha]}, {0}, {0} >= 0.0f)",
    "Elu": "select({a[alpha]} * (exp({0}) - 1.0f), {0}, {0} >= 0.0f)",
    "HardSigmoid": "clamp({a[alpha]} * {0} + {a[beta]}, 0.0f, 1.0f)",
    "HardSwish": "({0} * clamp({0} / 6.0f + 0.5f, 0.0f, 1.0f))",
    "IsNaN": "((bitcast<u32>({0}) & 0x7fffffffu) > 0x7f800000u)",
}
INT = {
    "Identity": "{0}", "Neg": "(-{0})", "Abs": "abs({0})", "Add": "({0} + {1})", "Sub": "({0} - {1})",
    "Mul": "({0} * {1})", "Div": "({0} / {1})", "Max": "max({0}, {1})", "Min": "min({0}, {1})",
    "Pow": "ipow_({0}, {1})", "Sign": "sign({0})",
}
BOOL = {"Identity": "{0}", "Not": "(!{0})", "And": "({0} && {1})", "Or": "({0} || {1})", "Xor": "({0} != {1})"}
ANY = {"Equal": "({0} == {1})", "Less": "({0} < {1})", "Greater": "({0} > {1})",
       "LessOrEqual": "({0} <= {1})", "GreaterOrEqual": "({0} >= {1})", "Where": "select({2}, {1}, {0})"}
CAST = {("f32", "i32"): "i32({0})", ("i32", "f32"): "f32({0})", ("bool", "f32"): "select(0.0f, 1.0f, {0})",
        ("bool", "i32"): "select(0i, 1i, {0})", ("f32", "bool"): "({0} != 0.0f)", ("i32", "bool"): "({0} != 0i)"}
GELU = {"none": "(0.5f * {0} * (1.0f + erf_({0} * 0.70710678118654752f)))",
        "tanh": "(0.5f * {0} * (1.0f + tanh(clamp(0.79788456080286536f * ({0} + 0.044715f * {0} * {0} * {0}), "
                "-15.0f, 15.0f))))"}
VARIADIC = {"Sum": "Add", "Max": "Max", "Min": "Min", "Mean": "Add"}
# Mod: the remainder with the dividend's sign (C fmod; a finite x mod inf is x) by operand type, then, for fmod=0, the
# step to the divisor's sign (Python %) from that remainder {0} and the divisor {1}
FMOD = {"f32": "select({0} - trunc({0} / {1}) * {1}, {0}, (bitcast<u32>({1}) & 0x7fffffffu) == 0x7f800000u && "
               "(bitcast<u32>({0}) & 0x7fffffffu) < 0x7f800000u)", "i32": "({0} % {1})"}
MOD_SIGN = {"f32": "select({0}, {0} + {1}, {0} != 0.0f && (({0} < 0.0f) != ({1} < 0.0f)))",
            "i32": "select({0}, {0} + {1}, {0} != 0i && (({0} < 0i) != ({1} < 0i)))"}
# Clip's bounds when it has none: onnxruntime clamps floats to the finite range (inf becomes FLT_MAX)
CLIP_DEFAULT = {"f32": (-3.4028234663852886e+38, 3.4028234663852886e+38), "i32": (None, None)}
# reduce op -> (identity for f32, identity for i32, acc with element x folded in, result from acc; N: the count)
REDUCE = {"sum": ("0.0f", "0i", "acc + x", "acc"), "mean": ("0.0f", "0i", "acc + x", "acc / {T}({N})"),
          "max": ("-3.4028234663852886e+38f", "i32(-2147483647i - 1i)", "max(acc, x)", "acc"),
          "min": ("3.4028234663852886e+38f", "2147483647i", "min(acc, x)", "acc"),
          "prod": ("1.0f", "1i", "acc * x", "acc"), "sum_square": ("0.0f", "0i", "acc + x * x", "acc"),
          "l1": ("0.0f", "0i", "acc + abs(x)", "acc"), "l2": ("0.0f", None, "acc + x * x", "sqrt(acc)"),
          "log_sum": ("0.0f", None, "acc + x", "log(acc)"),
          "log_sum_exp": ("0.0f", None, "acc + exp(x - m)", "m + log(acc)")}  # m: the largest element (a first pass)


def literal(value, dtype: str) -> str:
    """A WGSL literal for a scalar constant: exact for f32, no inf/nan literals (WGSL has none)."""
    t = TYPES[dtype][1]
    if t == "bool":
        return "true" if value else "false"
    if t == "i32":
        v = int(value)
        if not -2**31 <= v < 2**31:
            v = max(-2**31, min(2**31 - 1, v))  # int64 sentinels (e.g. INT64_MAX in slices) saturate
        return f"{v}i" if v != -2**31 else "i32(-2147483647i - 1i)"
    f = f32(value)
    if not math.isfinite(f):
        return f"f32_bits({f32_bits(f)}u)"  # helper in _common.wgsl.j2
    return f"{f!r}f"


def _type_of(arg, leaves, lines) -> str:
    if arg[0] == "acc":
        return "f32"
    if arg[0] == "x":
        return TYPES[leaves[arg[1]]["dtype"]][1]
    if arg[0] == "t":
        return lines[arg[1]][0]
    return TYPES[arg[2]][1]


def expressions(code, leaves, rank: int) -> list[tuple[str, str]]:
    """Elementwise code -> [(register type, WGSL expression)], one per line; line j is named t{j}."""
    lines: list[tuple[str, str]] = []
    for dtype, op, args, attrs in code:
        attrs = dict(attrs)
        out_t = TYPES[dtype][1] if dtype in TYPES else None
        if out_t is None:
            raise UnsupportedOp(f"elementwise {op} on {dtype}: webjit kernels handle float32, int64, int32, bool")
        ops = [("x" + str(a[1]) if a[0] == "x" else "acc" if a[0] == "acc" else f"t{a[1]}" if a[0] == "t"
                else literal(a[1], a[2])) if a is not None else None for a in args]
        in_t = _type_of(args[0], leaves, lines) if args and args[0] is not None else out_t
        if op == "Cast" or op == "CastLike":
            expr = "{0}" if in_t == out_t else CAST[(in_t, out_t)]
        elif op == "Gelu":
            expr = GELU[attrs.get("approximate", "none")]
        elif op == "Clip":
            e = ops[0]
            for k, (bound, attr, fn, cmp) in enumerate(zip((ops + [None, None])[1:3], ("min", "max"),
                                                          ("max", "min"), ("<", ">"))):
                if bound is None and attr in attrs:  # Clip-6: bounds as attributes
                    bound = literal(attrs[attr], dtype)
                if bound is None and CLIP_DEFAULT.get(in_t, (None, None))[k] is not None:
                    bound = literal(CLIP_DEFAULT[in_t][k], dtype)
                if bound is not None:  # floats by select, so that NaN passes through as in onnxruntime
                    e = f"select({e}, {bound}, {e} {cmp} {bound})" if in_t == "f32" else f"{fn}({e}, {bound})"
            lines.append((out_t, e))
            continue
        elif op == "Mod":
            expr = FMOD[in_t]
            if not attrs.get("fmod", 0):  # then the divisor's sign, from the remainder (repeated: operands are names)
                expr = MOD_SIGN[in_t].replace("{0}", "(" + expr + ")")
        elif op == "Trilu":
            cmp = ">=" if attrs.get("upper", 1) else "<="
            zero = literal(0, dtype)
            expr = f"select({zero}, {{0}}, i32(c{rank - 1}) - i32(c{rank - 2}) {cmp} {attrs.get('k', 0)}i)"
        elif op == "IsInf":
            pos, neg = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
            bits = [b for b, on in (("0x7f800000u", pos), ("0xff800000u", neg)) if on]
            expr = "(" + " || ".join(f"(bitcast<u32>({{0}}) == {b})" for b in bits) + ")" if bits else "false"
        elif op in VARIADIC and len(ops) != 2:
            e = ops[0]
            for o in ops[1:]:
                e = (FLOAT if in_t == "f32" else INT)[VARIADIC[op]].format(e, o)
            if op == "Mean":
                e = f"({e} / {literal(len(ops), dtype)})"
            lines.append((out_t, e))
            continue
        elif op == "Pow" and args[1] is not None and args[1][0] == "c" and args[1][1] in (1, 2, 3):
            expr = " * ".join(["{0}"] * int(args[1][1]))
            expr = f"({expr})"
        elif op == "Pow" and _type_of(args[1], leaves, lines) != in_t:
            # ONNX Pow takes base and exponent of different types; the result has the base's type
            expr = ("pow_({0}, f32({1}))" if in_t == "f32" else  # int exponent of a float base
                    # float exponent of an int base: exact when integral, else truncated toward zero (as
                    # onnxruntime), nudged up by 2^-20 so that a power that is an integer never truncates below it
                    "select(i32(pow_(f32({0}), {1}) * 1.00000095f), ipow_({0}, i32({1})), {1} == trunc({1}))")
        else:
            table = {**ANY, **({"f32": FLOAT, "i32": INT, "bool": BOOL}[in_t])}
            if op in VARIADIC:
                table = {**table, op: table[VARIADIC[op]]}
            if op not in table:
                raise UnsupportedOp(f"elementwise {op} on {in_t} operands is not supported")
            expr = table[op]
        lines.append((out_t, expr.format(*ops, a={k: literal(v, "float32") for k, v in attrs.items()
                                                  if isinstance(v, (int, float)) and not isinstance(v, bool)})))
    return lines


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["u32"] = lambda v: f"{int(v) % 2**32}u"
    env.filters["f32"] = lambda v: literal(v, "float32")
    env.filters["reduce_product"] = prod
    return env


def _buffers(spec: KernelSpec, dtypes: dict[str, str]) -> list[dict]:
    out = [{"name": f"in{i}", "type": TYPES[dtypes[b]][0], "write": False} for i, b in enumerate(spec.inputs)]
    out += [{"name": f"out{i}", "type": TYPES[dtypes[b]][0], "write": True} for i, b in enumerate(spec.outputs)]
    return out


def _reduce(spec: KernelSpec, p: dict) -> dict:
    t = TYPES[p["dtype"]][1]
    ident_f, ident_i, step, result = REDUCE[p["op"]]
    if t == "bool" or (t == "i32" and ident_i is None):
        raise UnsupportedOp(f"node '{spec.node}': Reduce {p['op']} of {p['dtype']} tensors is not supported")
    return {"identity": ident_f if t == "f32" else ident_i, "step": step, "shift": p["op"] == "log_sum_exp",
            "result": result.format(T=t, N=f"{prod(p['red_shape']) % 2**32}u")}


def render(spec: KernelSpec, variant: Variant, dtypes: dict[str, str]) -> str:
    """WGSL source of one variant. dtypes: the dtype of every buffer the kernel binds."""
    p = dict(spec.params)
    for d in list(spec.inputs) + list(spec.outputs):
        if dtypes[d] not in TYPES:
            raise UnsupportedOp(f"node '{spec.node}': tensors of type {dtypes[d]} are not supported "
                                f"(webjit handles float32, int64, int32, bool)")
    if "code" in p:
        rank = len(p.get("shape") or (p.get("batch", []) + [0, 0]))
        p["lines"] = expressions(p["code"], p["leaves"], rank)
    for key in ("shape", "out_shape", "red_shape", "batch"):
        if key in p:
            p[key + "_div"] = list(contiguous_strides(tuple(p[key])))
    p["total"] = prod(p["shape"]) if "shape" in p else None
    if spec.kind == "reduce":
        p.update(_reduce(spec, p))
    p["value_type"] = {k: v[1] for k, v in TYPES.items()}
    p["store_type"] = {k: v[0] for k, v in TYPES.items()}
    template = spec.kind + ("_vec4" if variant.v.get("V") else "")  # a variant may pick a vectorised form
    src = _env().get_template(f"{template}.wgsl.j2").render(
        **p, **variant.v, buffers=_buffers(spec, dtypes), kind=spec.kind, variant_key=variant.key,
        b_slot=p["b"]["slot"] if "b" in p and isinstance(p["b"], dict) else None)
    return src
