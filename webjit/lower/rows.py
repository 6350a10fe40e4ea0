"""Kernels that reduce along one axis: softmax, layer and RMS normalisation, Reduce*."""
from __future__ import annotations

import math

from ..tensor import prod

from ..space import ROW_THREADS, Variant, grid, round_up
from .elementwise import bindings, space_1d
from .spec import KernelSpec


def row_space(rows: int, cols: int) -> tuple[Variant, ...]:
    out = [Variant((("wg", wg),), grid(rows), wg, 8 * wg, 8) for wg in ROW_THREADS
           if wg <= max(32, 2 * round_up(cols, 32))]
    return tuple(sorted(out, key=lambda v: v.v["wg"] != 64))


def _rows_of(shape, axis: int) -> tuple[int, int, int]:
    """(outer, length, inner): the reduced axis sits between two blocks of contiguous dims."""
    return (prod(shape[:axis]), shape[axis], prod(shape[axis + 1:]))


def _row_kernel(c, kind: str, x: str, params: dict, extra_in=(), outputs=None):
    shape = c.shape(x)
    if c.dtype(x) != "float32":
        raise c.unsupported(f"{c.node.op} on {c.dtype(x)}")
    bases, _ = bindings(c, [x, *extra_in])
    outer, length, inner = params["outer"], params["length"], params["inner"]
    total = prod(shape)
    return [KernelSpec(kind, c.node.name, params, tuple(bases), tuple(outputs or c.node.outputs),
                       row_space(outer * inner, length), flops=8 * total, bytes=8 * total)]


def Softmax(c, *, axis=-1):
    x = c.node.inputs[0]
    outer, length, inner = _rows_of(c.shape(x), axis % len(c.shape(x)))
    return _row_kernel(c, "softmax", x, {"outer": outer, "length": length, "inner": inner, "log": False})


def LogSoftmax(c, *, axis=-1):
    x = c.node.inputs[0]
    outer, length, inner = _rows_of(c.shape(x), axis % len(c.shape(x)))
    return _row_kernel(c, "softmax", x, {"outer": outer, "length": length, "inner": inner, "log": True})


def _norm(c, x, scale, bias, axis, epsilon, rms):
    shape = c.shape(x)
    axis %= len(shape)
    rows, cols = prod(shape[:axis]), prod(shape[axis:])
    extra = [n for n in (scale, bias) if n]
    for n in extra:
        size = prod(c.shape(n))
        if size not in (1, cols) or not c.view(n).contiguous or c.view(n).offset:
            raise c.unsupported(f"scale/bias '{n}' of shape {list(c.shape(n))} for rows of {cols}")
    _, slots = bindings(c, [x, *extra])
    outs = [o for o in c.node.outputs]
    params = {"outer": rows, "length": cols, "inner": 1, "epsilon": float(epsilon), "rms": rms,
              "scale": {"slot": slots[1], "broadcast": c.shape(scale) in ((), (1,))} if scale else None,
              "bias": {"slot": slots[2], "broadcast": c.shape(bias) in ((), (1,))} if bias else None,
              "stats": len([o for o in outs[1:] if o])}
    return _row_kernel(c, "norm", x, params, extra, [o for o in outs if o])


def LayerNormalization(c, *, axis=-1, epsilon=1e-5, stash_type=1):
    return _norm(c, c.node.inputs[0], c.node.input(1), c.node.input(2), axis, epsilon, False)


def RMSNorm(c, *, epsilon=1e-6):
    return _norm(c, c.node.inputs[0], c.node.input(1), "", -1, epsilon, True)


def _reduce(c, op, axes=None, keepdims=1, noop_with_empty_axes=0):
    x, out = c.node.inputs[0], c.node.outputs[0]
    shape = c.shape(x)
    if axes is None and c.node.input(1):
        axes = [int(a) for a in c.g.const(c.node.inputs[1]).reshape(-1)]
    if not axes:
        axes = [] if noop_with_empty_axes else list(range(len(shape)))
    axes = sorted({a % len(shape) for a in axes}) if shape else []
    strides = c.view(x).strides
    kept = [i for i in range(len(shape)) if i not in axes]
    params = {"op": op, "dtype": c.dtype(x),
              "out_shape": [shape[i] for i in kept], "out_strides": [strides[i] for i in kept],
              "red_shape": [shape[i] for i in axes], "red_strides": [strides[i] for i in axes]}
    total = prod(c.shape(out))
    red = prod(params["red_shape"])
    if red == 0:  # over no elements: the op's value of the empty set, whatever the input
        value = EMPTY[op][0 if params["dtype"] in ("float32",) else 1]
        fill = {"shape": list(c.shape(out)), "out_dtype": params["dtype"], "leaves": [],
                "code": [[params["dtype"], "Identity", (("c", value, params["dtype"]),), ()]]}
        return [KernelSpec("elementwise", c.node.name, fill, (), (out,), space_1d(total), bytes=4 * total)]
    return [KernelSpec("reduce", c.node.name, params, (c.base(x),), (out,), space_1d(total),
                       flops=total * red, bytes=4 * total * (red + 1))]


# reduce op -> its value over no elements (float, int)
EMPTY = {"sum": (0.0, 0), "mean": (math.nan, 0), "max": (-math.inf, -2**31), "min": (math.inf, 2**31 - 1),
         "prod": (1.0, 1), "sum_square": (0.0, 0), "l1": (0.0, 0), "l2": (0.0, 0), "log_sum": (-math.inf, 0),
         "log_sum_exp": (-math.inf, 0)}
# ONNX Reduce op -> the reduce kernel's op (see the REDUCE tables of the renderers)
REDUCE_OPS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod",
              "ReduceSumSquare": "sum_square", "ReduceL1": "l1", "ReduceL2": "l2", "ReduceLogSum": "log_sum",
              "ReduceLogSumExp": "log_sum_exp"}


def _reduce_op(name: str):
    def lowering(c, *, axes=None, keepdims=1, noop_with_empty_axes=0):
        return _reduce(c, REDUCE_OPS[name], axes, keepdims, noop_with_empty_axes)
    lowering.__name__ = lowering.__qualname__ = name
    return lowering


OPS = {"Softmax": Softmax, "LogSoftmax": LogSoftmax, "LayerNormalization": LayerNormalization,
       "RMSNorm": RMSNorm, **{name: _reduce_op(name) for name in REDUCE_OPS}}
