"""The graph IR every compiler stage reads and writes.

A `Graph` is a topologically ordered list of `Node`s over named `Value`s. Values carry a dtype (ONNX name such as
"float32"), a shape and, once known, a constant. Shapes start out possibly symbolic (strings) and are fully
concrete after `shapes.specialize`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tensor import Tensor, prod

Shape = tuple[int, ...]


@dataclass
class Value:
    name: str
    dtype: str
    shape: tuple[int | str, ...] | None = None
    const: Tensor | None = None
    view: Any = None  # a views.View when this value is a strided view of another value's buffer

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""

    def input(self, i: int) -> str:
        """The name of input i, or "" when it is absent (optional inputs)."""
        return self.inputs[i] if i < len(self.inputs) else ""


@dataclass
class Graph:
    nodes: list[Node]
    values: dict[str, Value]
    inputs: list[str]
    outputs: list[str]
    opset: int
    name: str = "graph"

    def v(self, name: str) -> Value:
        return self.values[name]

    def const(self, name: str) -> Tensor | None:
        return self.values[name].const if name else None

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        uses: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    uses.setdefault(i, []).append(n)
        return uses

    def fresh(self, base: str) -> str:
        """A value name not yet used in the graph."""
        i, name = 0, base
        while name in self.values:
            i += 1
            name = f"{base}_{i}"
        return name

    def remove_dead(self) -> None:
        """Drop nodes none of whose outputs reach a graph output, and values nobody refers to."""
        live = set(self.outputs)
        kept = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(i for i in n.inputs if i)
        self.nodes = kept[::-1]
        live.update(self.inputs)
        live.update(o for n in kept for o in n.outputs if o)  # a kept node's unread outputs keep their shapes
        self.values = {k: v for k, v in self.values.items() if k in live}

    def dump(self) -> str:
        """A readable listing, one node per line, as written by WEBJIT_DUMP to graph.txt."""
        def fmt(name: str) -> str:
            if not name:
                return "_"
            v = self.values[name]
            kind = "const " if v.const is not None else ""
            return f"{name}:{kind}{v.dtype}{list(v.shape) if v.shape is not None else '?'}"

        lines = [f"graph {self.name} opset {self.opset}"]
        lines += [f"  input  {fmt(i)}" for i in self.inputs]
        for n in self.nodes:
            attrs = {k: v for k, v in n.attrs.items() if not isinstance(v, (Tensor, Graph))}
            lines.append(f"  {', '.join(map(fmt, n.outputs))} = {n.op}({', '.join(map(fmt, n.inputs))}) {attrs or ''}".rstrip())
        lines += [f"  output {fmt(o)}" for o in self.outputs]
        return "\n".join(lines) + "\n"
