"""Stage 1: read an ONNX file (with external data) into the webjit IR."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, helper, numpy_helper

from .errors import UnsupportedOp, WebjitError
from .ir import Graph, Node, Value

MIN_OPSET = 13


def dtype_name(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Parse an ONNX file and its external data, with a clear error for each way it can go wrong."""
    path = Path(path)
    if not path.is_file():
        raise WebjitError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise WebjitError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node and not model.graph.output:
        raise WebjitError(f"{path}: not an ONNX model (no graph)")
    for t in _tensors(model.graph):
        if not external_data_helper.uses_external_data(t):
            continue
        info = external_data_helper.ExternalDataInfo(t)
        file = (path.parent / info.location).resolve()
        if path.parent.resolve() not in file.parents or not file.is_file():
            raise WebjitError(f"{path}: tensor '{t.name}' needs external data file '{info.location}', which is missing")
        size = file.stat().st_size
        if info.length and info.offset + info.length > size:
            raise WebjitError(f"{path}: external data file '{info.location}' is truncated (tensor '{t.name}')")
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as e:
        raise WebjitError(f"{path}: cannot read external data: {e}") from None
    return model


def _tensors(g: onnx.GraphProto):
    yield from g.initializer
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t


def _attr(a: onnx.AttributeProto):
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return None  # control flow is rejected by the op check
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8", "replace") for s in v]
    return v


def _dims(tt: onnx.TypeProto.Tensor, name: str) -> tuple[int | str, ...] | None:
    if not tt.HasField("shape"):
        return None
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"{name}_dim{i}")
    return tuple(dims)


def from_onnx(model: onnx.ModelProto) -> Graph:
    """Convert a parsed model. Initializers become constants; nothing is evaluated yet."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if 0 < opset < MIN_OPSET:
        from onnx import version_converter
        try:  # most ops read the same in opset 13 (And-7, Not-1, ...): let onnx's adapters say
            model = version_converter.convert_version(model, MIN_OPSET)
            opset = MIN_OPSET
        except Exception:
            pass  # no adapter for some node: reported below as before
    if opset < MIN_OPSET:
        raise UnsupportedOp(f"model uses opset {opset}; webjit reads opset {MIN_OPSET} and newer "
                            f"(convert it with onnx.version_converter)")
    g = model.graph
    values: dict[str, Value] = {}
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        values[t.name] = Value(t.name, arr.dtype.name, tuple(arr.shape), arr)
    inputs = []
    for vi in g.input:
        if vi.name in values:
            continue  # old exporters list initializers as inputs too
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise WebjitError(f"input '{vi.name}' is not a tensor; webjit handles tensor inputs only")
        values[vi.name] = Value(vi.name, dtype_name(tt.elem_type), _dims(tt, vi.name))
        inputs.append(vi.name)
    nodes = []
    for i, p in enumerate(g.node):
        if p.domain not in ("", "ai.onnx"):
            raise UnsupportedOp(f"node '{p.name or i}' ({p.domain}.{p.op_type}): custom domain "
                                f"'{p.domain}' is not supported")
        attrs = {a.name: _attr(a) for a in p.attribute}
        nodes.append(Node(p.op_type, p.name or f"{p.op_type}_{i}", list(p.input), list(p.output), attrs, "", p))
        for o in p.output:
            if o:
                values.setdefault(o, Value(o, "float32"))
    outputs = [o.name for o in g.output]
    for o in g.output:  # declared output dtypes help check our inference; shapes are inferred anew
        if o.name not in values:
            raise WebjitError(f"output '{o.name}' is produced by no node")
    return Graph(nodes, values, inputs, outputs, opset, g.name or "graph")


def import_onnx(path: str | os.PathLike) -> Graph:
    """Stage entry point: file -> IR graph."""
    return from_onnx(load_model(path))
