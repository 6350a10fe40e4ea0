"""Quantization ops as the nodes webjit has kernels for.

  quantized_weights  Gather of an int8 / uint8 table (or of a DequantizeLinear of one) -> QGather of the table packed
                   as bytes, then DequantizeLinear of the rows; MatMulInteger with a constant 2-D B, com.microsoft MatMulNBits -> QMatMul: a matmul whose B
                   stays quantized (packed words, see quant_pack.py) with per-block scales and zero points, unpacked
                   and scaled as the kernel loads it. B(k, n) = (q(k, n) - zero(k / bs, n)) * scale(k / bs, n).
                   (ConvInteger reaches here as a MatMulInteger over its patches: fuse/conv.py.)
  decompose_quant  DequantizeLinear, QuantizeLinear, DynamicQuantizeLinear -> Elementwise code (and ReduceMin /
                   ReduceMax for the dynamic range); MatMulInteger with B computed at run time -> Elementwise
                   (zero points subtracted, as float32) + MatMul + Cast to int32

Integer semantics follow onnxruntime: x / scale rounded half to even, plus the zero point, saturated to the
type's range. Integer products summed in float32 are exact while every partial sum stays below 2^24.
"""
from __future__ import annotations

from ..ir import Graph, Node
from ..tensor import INT_RANGE, Tensor, prod
from .quant_pack import grouped, nibbles, pack, padded_columns, transposed_bytes
from .rewrite import Rewriter, reorder_and_prune

F = "float32"


class _Code:
    """Elementwise code under construction: leaves, lines, and the value of each argument."""

    def __init__(self, r: Rewriter, out_rank: int, axis: int | None = None):
        self.r, self.rank, self.axis = r, out_rank, axis
        self.leaves: list[str] = []
        self.lines: list[tuple] = []

    def arg(self, name: str):
        """An input: an inline scalar when constant, else a leaf (a per-axis 1-D constant is reshaped to broadcast
        along `axis`)."""
        v = self.r.g.values[name]
        if v.const is not None and v.const.size == 1:
            dt = F if v.dtype == F else "int32"
            return ("c", v.const.item(0), dt)
        if len(v.shape) == 1 and self.axis is not None and self.rank > 1:
            shape = (v.shape[0],) + (1,) * (self.rank - 1 - self.axis)
            if v.const is None:
                raise ValueError(f"per-axis '{name}' is computed at run time")
            name = self.r.new_const(f"{name}_axis", v.const.reshape(shape))
        if name not in self.leaves:
            self.leaves.append(name)
        return ("x", self.leaves.index(name))

    def line(self, dtype: str, op: str, *args, **attrs):
        self.lines.append((dtype, op, tuple(args), tuple(sorted(attrs.items()))))
        return ("t", len(self.lines) - 1)

    def node(self, name: str, out: str) -> Node:
        return Node("Elementwise", name, list(self.leaves), [out], {"code": tuple(self.lines)})


def _float(c: _Code, a):
    return a if a[0] == "c" and a[2] == F else ("c", float(a[1]), F) if a[0] == "c" else c.line(F, "Cast", a)


def dequantize(c: _Code, x, scale, zp=None):
    """(x - zero point) * scale, in float32."""
    v = _float(c, x)
    if zp is not None:
        v = c.line(F, "Sub", v, _float(c, zp))
    return c.line(F, "Mul", v, scale)


def quantize(c: _Code, x, scale, zp, dtype: str):
    """saturate(round_half_even(x / scale) + zero point), as `dtype`."""
    lo, hi = INT_RANGE[dtype]
    v = c.line(F, "Round", c.line(F, "Div", x, scale, exact=1))  # exact: see render_wasm_kinds._reciprocals
    if zp is not None:
        v = c.line(F, "Add", v, _float(c, zp))
    v = c.line(F, "Clip", v, ("c", float(lo), F), ("c", float(hi), F))
    return c.line(dtype, "Cast", v)


def _axis(g: Graph, n: Node) -> int:
    rank = len(g.values[n.inputs[0]].shape)
    return n.attrs.get("axis", 1) % max(rank, 1)


def _dequantize_linear(r: Rewriter, n: Node) -> list[Node]:
    if n.attrs.get("block_size", 0):
        raise ValueError("blocked DequantizeLinear")
    c = _Code(r, len(r.g.values[n.outputs[0]].shape), _axis(r.g, n))
    zp = c.arg(n.input(2)) if n.input(2) else None
    dequantize(c, c.arg(n.inputs[0]), c.arg(n.inputs[1]), zp)
    return [c.node(n.name, n.outputs[0])]


def _quantize_linear(r: Rewriter, n: Node) -> list[Node]:
    if n.attrs.get("block_size", 0):
        raise ValueError("blocked QuantizeLinear")
    out = r.g.values[n.outputs[0]]
    if out.dtype not in ("int8", "uint8"):
        raise ValueError(f"QuantizeLinear to {out.dtype}")
    c = _Code(r, len(out.shape), _axis(r.g, n))
    zp = c.arg(n.input(2)) if n.input(2) else None
    quantize(c, c.arg(n.inputs[0]), c.arg(n.inputs[1]), zp, out.dtype)
    return [c.node(n.name, n.outputs[0])]


def dynamic_range(r: Rewriter, n: Node, x: str, scale: str, zp: str) -> list[Node]:
    """The scale and zero point DynamicQuantizeLinear takes from x's range (extended to hold 0):
    scale = (max - min) / 255 (1 when max == min), zero point = round(saturate(0 - min / scale))."""
    like = r.g.values[scale]
    lo, hi = r.new_value(f"{n.name}_min", like, (), F), r.new_value(f"{n.name}_max", like, (), F)
    nodes = [Node("ReduceMin", f"{n.name}_min", [x], [lo], {"keepdims": 0}),
             Node("ReduceMax", f"{n.name}_max", [x], [hi], {"keepdims": 0})]
    c = _Code(r, 0)
    mn = c.line(F, "Min", c.arg(lo), ("c", 0.0, F))
    mx = c.line(F, "Max", c.arg(hi), ("c", 0.0, F))
    s = c.line(F, "Div", c.line(F, "Sub", mx, mn), ("c", 255.0, F), exact=1)
    c.line(F, "Where", c.line("bool", "Equal", mx, mn), ("c", 1.0, F), s)
    nodes.append(c.node(f"{n.name}_scale", scale))
    c = _Code(r, 0)
    mn = c.line(F, "Min", c.arg(lo), ("c", 0.0, F))
    z = c.line(F, "Sub", ("c", 0.0, F), c.line(F, "Div", mn, c.arg(scale), exact=1))
    z = c.line(F, "Round", c.line(F, "Clip", z, ("c", 0.0, F), ("c", 255.0, F)))
    c.line("uint8", "Cast", z)
    nodes.append(c.node(f"{n.name}_zero_point", zp))
    return nodes


def _dynamic_quantize_linear(r: Rewriter, n: Node) -> list[Node]:
    x, (y, scale, zp) = n.inputs[0], n.outputs
    scale = scale or r.new_value(f"{n.name}_scale", r.g.values[x], (), F)
    zp = zp or r.new_value(f"{n.name}_zp", r.g.values[x], (), "uint8")
    nodes = dynamic_range(r, n, x, scale, zp)
    if y:
        c = _Code(r, len(r.g.values[y].shape))
        quantize(c, c.arg(x), c.arg(scale), c.arg(zp), "uint8")
        nodes.append(c.node(n.name, y))
    return nodes


def centered(r: Rewriter, n: Node, x: str, zp: str, axis: int | None, tag: str) -> tuple[str, Node]:
    """x - zero point as float32 (the integer value a MatMulInteger operand stands for)."""
    v = r.g.values[x]
    c = _Code(r, len(v.shape), axis)
    a = _float(c, c.arg(x))
    if zp:
        a = c.line(F, "Sub", a, _float(c, c.arg(zp)))
    else:
        c.line(F, "Identity", a)
    out = r.new_value(f"{n.name}_{tag}", v, dtype=F)
    return out, c.node(f"{n.name}_{tag}", out)


def _operand_a(r: Rewriter, n: Node) -> tuple[str, list[Node]]:
    """MatMulInteger's A centered on its zero point, as float32. An A that is float32 already holds centered
    integers (the patches of a ConvInteger, fuse/conv.py) and is used as it is."""
    a = n.inputs[0]
    v = r.g.values[a]
    if v.dtype == F and not n.input(2):
        return a, []
    a2, na = centered(r, n, a, n.input(2), len(v.shape) - 2 if len(v.shape) > 1 else None, "a")
    return a2, [na]


def _matmul_integer(r: Rewriter, n: Node) -> list[Node]:
    a2, na = _operand_a(r, n)
    b2, nb = centered(r, n, n.inputs[1], n.input(3), None, "b")
    y = r.g.values[n.outputs[0]]
    acc = r.new_value(f"{n.name}_acc", y, dtype=F)
    c = _Code(r, len(y.shape))
    c.line("int32", "Cast", c.arg(acc))
    return [*na, nb, Node("MatMul", n.name, [a2, b2], [acc]), c.node(f"{n.name}_int", n.outputs[0])]


DECOMPOSE = {"DequantizeLinear": _dequantize_linear, "QuantizeLinear": _quantize_linear,
             "DynamicQuantizeLinear": _dynamic_quantize_linear, "MatMulInteger": _matmul_integer}


def decompose_quant(g: Graph) -> None:
    from ..errors import UnsupportedOp
    r = Rewriter(g)
    out: list[Node] = []
    for n in g.nodes:
        fn = DECOMPOSE.get(n.op)
        if fn is None:
            out.append(n)
            continue
        try:
            out += fn(r, n)
        except ValueError as e:
            raise UnsupportedOp(f"node '{n.name}': op {n.op} (opset {g.opset}) is not supported: {e}") from None
    g.nodes = out
    reorder_and_prune(g)


def _qmatmul(r: Rewriter, n: Node, a: str, out: str, w: Tensor, *, bits: int, signed: bool, bs: int,
             scale: Tensor | None = None, zp: Tensor | None = None, zero: float = 0.0, za: str | None = None,
             aint: bool = False) -> Node:
    """A QMatMul node: inputs A, the packed B words, then the scales, packed zero points and A's zero point where
    they exist. aint: A holds the uint8 values themselves (MatMulInteger), to be centered on za by the kernel, and
    B is int8 in groups of 4 rows with its column sums (quant_pack.grouped)."""
    inputs = [a, r.new_const(f"{n.name}_qweight", w)]
    if scale is not None:
        inputs.append(r.new_const(f"{n.name}_qscale", scale))
    if zp is not None:
        inputs.append(r.new_const(f"{n.name}_qzero", zp))
    if za is not None:
        inputs.append(za)
    attrs = {"bits": bits, "signed": signed, "bs": bs, "scale": scale is not None, "zp": zp is not None,
             "zero": float(zero), "za": za is not None, "aint": aint, "operands": len(inputs)}
    return Node("QMatMul", n.name, inputs, [out], attrs)


def _centered_int8(b: Tensor, zero: int) -> bytes | None:
    """The bytes of B - zero as int8 (B int8 or uint8), or None where some value does not fit."""
    data = b.tobytes()
    signed = [v - 256 if b.dtype == "int8" and v >= 128 else v for v in range(256)]  # byte -> its value
    present = [signed[v] for v in set(data)] or [0]
    if min(present) - zero < -128 or max(present) - zero > 127:
        return None
    return data.translate(bytes((x - zero) & 0xFF for x in signed))


def _from_matmul_integer(r: Rewriter, n: Node) -> list[Node] | None:
    b = r.g.values[n.inputs[1]]
    zb = r.g.values[n.input(3)] if n.input(3) else None
    if b.const is None or len(b.shape) != 2 or (zb is not None and (zb.const is None or zb.const.size not in (1, b.shape[1]))):
        return None
    k, cols = b.shape
    zero, zp = 0.0, None
    if zb is not None and zb.const.size == 1:
        zero = float(zb.const.item(0))
    elif zb is not None:
        zp = pack(zb.const.tobytes(), 1, cols, 8)
    y = r.g.values[n.outputs[0]]
    acc = r.new_value(f"{n.name}_acc", y, dtype=F)
    za = n.input(2) or None
    centered_b = _centered_int8(b.const, int(zero)) if zp is None else None
    if (r.g.values[n.inputs[0]].dtype == "uint8" and centered_b is not None
            and (za is None or prod(r.g.values[za].shape) == 1)):
        # the integer form: A's uint8 values and zero point go to the kernel as they are, B - zero as int8 in
        # groups of 4 rows with its column sums (quant_pack.grouped), so that a backend can multiply bytes
        # (templates_wasm/matmul_i8.wat.j2)
        na, mm = [], _qmatmul(r, n, n.inputs[0], acc, grouped(centered_b, k, cols), bits=8, signed=True, bs=k,
                              za=za, aint=True)
    else:
        a2, na = _operand_a(r, n)
        mm = _qmatmul(r, n, a2, acc, pack(b.const.tobytes(), k, cols, 8), bits=8, signed=b.dtype == "int8", bs=k,
                      zp=zp, zero=zero)
    c = _Code(r, len(y.shape))
    c.line("int32", "Cast", c.arg(acc))  # exact: the sum is an integer (below 2^24 in magnitude, see the module)
    return [*na, mm, c.node(f"{n.name}_int", n.outputs[0])]


def _from_matmul_nbits(r: Rewriter, n: Node) -> list[Node]:
    k, cols, bits, bs = (n.attrs.get(x) for x in ("K", "N", "bits", "block_size"))
    bits = bits or 4
    g = r.g
    w, scales = g.const(n.inputs[1]), g.const(n.inputs[2])
    zp = g.const(n.input(3)) if n.input(3) else None
    if bits not in (4, 8) or not bs or w is None or scales is None or (n.input(3) and zp is None):
        raise ValueError("MatMulNBits needs 4 or 8 bits and constant weights, scales and zero points")
    if n.input(4):
        raise ValueError("MatMulNBits with g_idx")
    if g.values[n.inputs[0]].dtype != F or scales.dtype != F or (zp is not None and zp.dtype != "uint8"):
        raise ValueError("MatMulNBits on float32 with uint8 zero points")
    nb = -(-k // bs)
    q = nibbles(w.tobytes()) if bits == 4 else w.tobytes()
    packed = pack(transposed_bytes(q, cols, nb * bs, k), k, cols, bits)
    scale = padded_columns(scales.reshape(cols, nb).T, cols)
    zpack = None
    if zp is not None:
        z = nibbles(zp.tobytes()) if bits == 4 else zp.tobytes()
        zpack = pack(transposed_bytes(z, cols, len(z) // cols, nb), nb, cols, bits)
    y = g.values[n.outputs[0]]
    out = r.new_value(f"{n.name}_mm", y) if n.input(5) else n.outputs[0]
    nodes = [_qmatmul(r, n, n.inputs[0], out, packed, bits=bits, signed=False, bs=bs, scale=scale, zp=zpack,
                      zero=2 ** (bits - 1))]
    if n.input(5):
        nodes.append(Node("Add", f"{n.name}_bias", [out, n.inputs[5]], [n.outputs[0]]))
    return nodes


def _dequantized_table(r: Rewriter, n: Node) -> list[Node] | None:
    """Gather(DequantizeLinear(table) with one scale and zero point) -> DequantizeLinear(Gather(table)): only the
    gathered rows are dequantized, and the table stays quantized."""
    dq = r.producer(n.inputs[0], "DequantizeLinear")
    if dq is None or r.g.const(dq.inputs[0]) is None or any(
            x and (r.g.const(x) is None or r.g.const(x).size != 1) for x in dq.inputs[1:3]):
        return None
    if len(r.uses.get(n.inputs[0], [])) != 1:
        return None
    table = r.g.values[dq.inputs[0]]
    rows = r.new_value(f"{n.name}_q", r.g.values[n.outputs[0]], dtype=table.dtype)
    return _quantized_gather(r, Node("Gather", n.name, [table.name, n.inputs[1]], [rows], n.attrs)) + [
        Node("DequantizeLinear", dq.name, [rows, *dq.inputs[1:]], n.outputs, dq.attrs)]


def _quantized_gather(r: Rewriter, n: Node) -> list[Node] | None:
    """Gather of rows of a constant int8 / uint8 table -> QGather: the table packed 4 bytes a word."""
    t = r.g.const(n.inputs[0])
    if t is None or t.dtype not in ("int8", "uint8") or t.ndim != 2 or n.attrs.get("axis", 0) % 2 != 0:
        return None
    rows, inner = t.shape
    attrs = {"bits": 8, "signed": t.dtype == "int8", "dim": rows, "inner": inner}
    return [Node("QGather", n.name, [r.new_const(f"{n.name}_qtable", pack(t.tobytes(), rows, inner, 8)),
                                     n.inputs[1]], n.outputs, attrs)]


def quantized_weights(g: Graph) -> None:
    from ..errors import UnsupportedOp
    r = Rewriter(g)
    out: list[Node] = []
    for n in g.nodes:
        try:
            new = (_from_matmul_integer(r, n) if n.op == "MatMulInteger" else
                   _from_matmul_nbits(r, n) if n.op == "MatMulNBits" and n.domain == "com.microsoft" else
                   (_dequantized_table(r, n) or _quantized_gather(r, n)) if n.op == "Gather" else None)
        except ValueError as e:
            raise UnsupportedOp(f"node '{n.name}': op {n.op} is not supported: {e}") from None
        out += [n] if new is None else new
    g.nodes = out
    reorder_and_prune(g)
