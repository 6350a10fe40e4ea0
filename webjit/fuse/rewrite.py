"""What every fusion pass shares: op families, a view of producers and consumers, and graph clean-up."""
from __future__ import annotations

from ..ir import Graph, Node, Value
from ..tensor import Tensor
from .. import ops

ELEMENTWISE = ops.names("elementwise")
USES_COORDS = {"Trilu"}  # code that reads output coordinates cannot be recomputed under broadcasting
VIEW_OPS = ops.names("view") | ops.names(view=True)
# inputs a kernel reads as contiguous buffers: the ONNX ops' from ops.py, and those of the ops fusion writes
DENSE_INPUTS = {**{op.name: op.dense_inputs for op in ops.ONNX.values() if op.dense_inputs},
                "RMSNorm": (0,), "QGather": (1,)}


class Rewriter:
    def __init__(self, g: Graph):
        self.g = g
        self.prod = g.producers()
        self.uses = g.consumers()

    def single_use(self, name: str) -> bool:
        return len(self.uses.get(name, [])) == 1 and name not in self.g.outputs

    def producer(self, name: str, op: str | set) -> Node | None:
        n = self.prod.get(name)
        ops = {op} if isinstance(op, str) else op
        return n if n is not None and n.op in ops else None

    def scalar(self, name: str) -> float | None:
        c = self.g.const(name)
        return float(c.item(0)) if c is not None and c.size == 1 else None

    def new_value(self, base: str, like: Value, shape=None, dtype=None) -> str:
        name = self.g.fresh(base)
        self.g.values[name] = Value(name, dtype or like.dtype, tuple(shape if shape is not None else like.shape))
        return name

    def new_const(self, base: str, arr: Tensor) -> str:
        name = self.g.fresh(base)
        self.g.values[name] = Value(name, arr.dtype.name, tuple(arr.shape), arr)
        return name


def reorder_and_prune(g: Graph) -> None:
    """Drop nodes made dead by a rewrite, keep a valid topological order."""
    g.remove_dead()
    known = set(g.inputs) | {k for k, v in g.values.items() if v.const is not None}
    ordered, pending = [], list(g.nodes)
    while pending:
        ready = [n for n in pending if all(not i or i in known for i in n.inputs)]
        assert ready, "graph has a cycle"
        for n in ready:
            ordered.append(n)
            known.update(n.outputs)
        pending = [n for n in pending if n not in ready]
    g.nodes = ordered
