"""Stage 1: read an ONNX file (with external data) into the webjit IR.

The file is decoded by `onnx_proto` (standard library only), so this stage runs where the onnx package does not
(Pyodide). Initializers become `Tensor` constants over the file's bytes: nothing is copied or evaluated yet.
"""
from __future__ import annotations

from typing import Any

import os

from . import onnx_proto, ops
from .ops import MIN_OPSET
from .errors import UnsupportedOp, WebjitError
from .ir import Graph, Node, Value
from .tensor import ITEMSIZE, Tensor



def dtype_name(elem_type: int) -> str:
    return onnx_proto.dtype_name(elem_type)


def load_model(path: str | os.PathLike) -> onnx_proto.Model:
    """Parse an ONNX file and its external data, with a clear error for each way it can go wrong."""
    return onnx_proto.load(path)


def _tensor(t: onnx_proto.Tensor, where: str) -> Tensor:
    if t.dtype not in ITEMSIZE:
        raise WebjitError(f"{where} '{t.name}' holds {t.dtype} values; webjit handles numeric tensors only")
    return Tensor(t.dtype, t.dims, t.data)


def _attr(a: onnx_proto.Attribute, node: str):
    v = a.value
    if isinstance(v, onnx_proto.Graph):
        return _body(v, node)  # an If branch: inlined when its condition folds (branches.py)
    if isinstance(v, list) and v and isinstance(v[0], onnx_proto.Graph):
        return None  # other control flow is rejected by the op check
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx_proto.Tensor):
        return _tensor(v, f"attribute '{a.name}' of node '{node}': tensor")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8", "replace") for s in v]
    if isinstance(v, list) and v and isinstance(v[0], onnx_proto.Tensor):
        return [_tensor(t, f"attribute '{a.name}' of node '{node}': tensor") for t in v]
    return v


def _body(g: onnx_proto.Graph, node: str) -> Graph:
    """A subgraph: its nodes, its initializers as constants, and its outputs (it has no inputs of its own: it reads
    values of the graphs around it by name)."""
    values = {}
    for t in g.initializers:
        arr = _tensor(t, f"initializer of a subgraph of node '{node}'")
        values[t.name] = Value(t.name, arr.dtype.name, tuple(arr.shape), arr)
    nodes = []
    for i, p in enumerate(g.nodes):
        if p.domain not in DOMAINS:
            raise UnsupportedOp(f"node '{p.name or i}' ({p.domain}.{p.op_type}) in a subgraph of node '{node}': "
                                f"custom domain '{p.domain}' is not supported")
        name = p.name or f"{node}/{p.op_type}_{i}"
        nodes.append(Node(p.op_type, name, list(p.inputs), list(p.outputs),
                          {a.name: _attr(a, name) for a in p.attributes}, DOMAINS[p.domain]))
    return Graph(nodes, values, [], [o.name for o in g.outputs], 0, g.name or node)


def _dims(shape: tuple | None, name: str) -> tuple[int | str, ...] | None:
    if shape is None:
        return None
    if any(isinstance(d, int) and d < 0 for d in shape):
        raise WebjitError(f"input '{name}' declares shape {list(shape)}, with a negative dim")
    return tuple(d if isinstance(d, (int, str)) and d != "" else f"{name}_dim{i}" for i, d in enumerate(shape))


def _in_order(nodes: list, known: set[str]) -> list[tuple[int, Any]]:
    """(index, node) in a topological order: the file's own order where it is one. ONNX asks files to be sorted,
    but some tools append nodes at the end (onnxruntime's float16 converter adds its input Casts last), and
    onnxruntime sorts them; so does webjit. Nodes whose inputs never become known keep their place at the end,
    where the importer names the input that is missing."""
    known = set(known)
    ordered, pending = [], list(enumerate(nodes))
    needs = {i: [x for x in p.inputs if x] + _outer_names(p) for i, p in pending}
    while pending:
        waiting = []
        for i, p in pending:
            if all(x in known for x in needs[i]):
                ordered.append((i, p))
                known.update(o for o in p.outputs if o)
            else:
                waiting.append((i, p))
        if len(waiting) == len(pending):
            return ordered + waiting
        pending = waiting
    return ordered


def _outer_names(p) -> list[str]:
    """The values of the graph around it that a node's subgraphs (If branches) read by name."""
    out = []
    for a in p.attributes:
        body = a.value if isinstance(a.value, onnx_proto.Graph) else None
        if body is not None:
            inside = {t.name for t in body.initializers} | {o for n in body.nodes for o in n.outputs if o}
            out += [x for n in body.nodes for x in list(n.inputs) + _outer_names(n) if x and x not in inside]
    return out


def from_onnx(model: onnx_proto.Model) -> Graph:
    """Convert a parsed model. Initializers become constants; nothing is evaluated yet."""
    opset = model.opset
    if 0 < opset < MIN_OPSET:
        raise UnsupportedOp(f"model uses opset {opset}; webjit reads opset {MIN_OPSET} and newer "
                            f"(convert it with onnx.version_converter)")
    if opset < MIN_OPSET:
        raise UnsupportedOp(f"model uses opset {opset}; webjit reads opset {MIN_OPSET} and newer")
    g = model.graph
    _check_ops(model)
    values: dict[str, Value] = {}
    for t in g.initializers:
        arr = _tensor(t, "initializer")
        values[t.name] = Value(t.name, arr.dtype.name, tuple(arr.shape), arr)
    inputs = []
    for vi in g.inputs:
        if vi.name in values:
            continue  # old exporters list initializers as inputs too
        if vi.elem_type is None:
            raise WebjitError(f"input '{vi.name}' is not a tensor; webjit handles tensor inputs only")
        values[vi.name] = Value(vi.name, dtype_name(vi.elem_type), _dims(vi.shape, vi.name))
        inputs.append(vi.name)
    nodes = []
    produced = {o for p in g.nodes for o in p.outputs if o}
    for i, p in _in_order(g.nodes, set(values) | {vi.name for vi in g.inputs}):
        name = p.name or f"{p.op_type}_{i}"
        for x in p.inputs:
            if x and x not in values:
                where = "is part of a cycle of nodes" if x in produced \
                    else "is no graph input, initializer or node output"
                raise WebjitError(f"node '{name}' ({p.op_type}): input '{x}' {where}")
        attrs = {a.name: _attr(a, name) for a in p.attributes}
        nodes.append(Node(p.op_type, name, list(p.inputs), list(p.outputs), attrs, DOMAINS[p.domain]))
        for o in p.outputs:
            if o:
                values.setdefault(o, Value(o, "float32"))
    outputs = [o.name for o in g.outputs]
    for o in g.outputs:  # declared output dtypes help check our inference; shapes are inferred anew
        if o.name not in values:
            raise WebjitError(f"output '{o.name}' is produced by no node")
    return Graph(nodes, values, inputs, outputs, opset, g.name or "graph")


# The op domains webjit reads, and the name each is kept under in the IR. onnxruntime's contrib ops (com.microsoft)
# are what its optimizer and quantizers write into hub models.
DOMAINS = {"": "", "ai.onnx": "", "com.microsoft": "com.microsoft"}


def _nodes_within(graph: onnx_proto.Graph, where: str = ""):
    """(domain, op type, node name) of every node, subgraphs (If branches) included, in file order."""
    for i, p in enumerate(graph.nodes):
        name = p.name or f"{where}{p.op_type}_{i}"
        yield DOMAINS.get(p.domain, p.domain), p.op_type, name
        for a in p.attributes:
            if isinstance(a.value, onnx_proto.Graph):
                yield from _nodes_within(a.value, f"{name}/{a.name}/")


def _check_ops(model: onnx_proto.Model) -> None:
    """Every op the model uses is one webjit declares (ops.py): else one line names them all, each with its
    domain, opset and first node, so that a user sees at once everything a model lacks."""
    opsets = {DOMAINS.get(d, d): v for d, v in model.opset_import.items()}
    missing = ops.unsupported(_nodes_within(model.graph), opsets)
    if missing:
        listed = ", ".join(f"{q} (opset {v}, first node '{node}')" for q, v, node in missing)
        raise UnsupportedOp(f"{len(missing)} {'ops are' if len(missing) > 1 else 'op is'} not supported: {listed}. "
                            f"Supported ops: {', '.join(ops.supported())}")


def import_onnx(path: str | os.PathLike) -> Graph:
    """Stage entry point: file -> IR graph."""
    model = load_model(path)
    if 0 < model.opset < MIN_OPSET:
        model = _upgraded(path, model)
    return from_onnx(model)


def _upgraded(path, model: onnx_proto.Model) -> onnx_proto.Model:
    """Most ops read the same in opset 13 (And-7, Not-1, ...): where the onnx package is installed, let its
    version converter lift an older model; elsewhere (or when it has no adapter) from_onnx reports the opset."""
    try:
        import onnx
        from onnx import version_converter
        converted = version_converter.convert_version(onnx.load(str(path)), MIN_OPSET)
        return onnx_proto.parse(converted.SerializeToString())
    except Exception:
        return model
