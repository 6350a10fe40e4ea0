"""What a lowering makes and what it sees: `KernelSpec` (a kernel: its kind, compile-time parameters, buffers and
tuning space) and `Ctx` (the graph around the node being lowered)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..errors import UnsupportedOp
from ..ir import Graph, Node
from ..space import Variant
from ..views import Access, View


@dataclass(frozen=True)
class KernelSpec:
    kind: str                 # template name
    node: str                 # graph node it implements (used in messages, never in kernel source)
    params: dict              # compile-time parameters (treat as read-only)
    inputs: tuple[str, ...]   # buffers read, in binding order
    outputs: tuple[str, ...]  # buffers written, bound after the inputs
    space: tuple[Variant, ...]
    name: str = ""            # k07_matmul, set by `lower`
    flops: int = 0
    bytes: int = 0

    @property
    def source_key(self) -> str:
        """Identifies the kernel source up to the variant: equal keys render equal code."""
        text = json.dumps([self.kind, self.params], sort_keys=True, default=lambda a: [a.offset, list(a.strides)])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def default(self) -> Variant:
        return self.space[0]


@dataclass
class Ctx:
    """What a lowering sees of the graph around its node."""
    g: Graph
    node: Node

    def shape(self, name: str):
        return tuple(self.g.values[name].shape)

    def dtype(self, name: str) -> str:
        return self.g.values[name].dtype

    def view(self, name: str) -> View:
        v = self.g.values[name]
        return v.view if v.view is not None else View.of(name, tuple(v.shape))

    def base(self, name: str) -> str:
        return self.view(name).base

    def access(self, name: str, out_shape) -> Access:
        return self.view(name).access(tuple(out_shape))

    def unsupported(self, why: str) -> UnsupportedOp:
        n = self.node
        return UnsupportedOp(f"node '{n.name}': op {n.op} (opset {self.g.opset}) is not supported: {why}")
