"""If nodes whose condition is known at compile time: the branch taken, inlined into the graph around it.

Exporters write If where the model code branches on a shape (DeBERTa's relative positions: "build them unless
given"). Once `shapes.specialize` has folded the condition, the If becomes the nodes of that branch, its values
renamed apart from the graph's, the branch's outputs written under the If's output names."""
from __future__ import annotations

from .errors import WebjitError
from .ir import Graph, Node, Value


def inline_if(g: Graph, node: Node) -> list[Node]:
    """The nodes that replace `node` (an If) in `g`, whose condition value must be a constant by now."""
    cond = g.values[node.inputs[0]].const
    if cond is None:
        raise WebjitError(f"node '{node.name}' (If): its condition is only known at run time; webjit compiles "
                          f"one branch, chosen at compile time")
    body = node.attrs.get("then_branch" if cond.item(0) else "else_branch")
    if not isinstance(body, Graph):
        raise WebjitError(f"node '{node.name}' (If): the branch taken has no graph")
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        if name not in names:
            names[name] = g.fresh(name)
            g.values[names[name]] = Value(names[name], "float32")  # typed when specialize reaches its node
        return names[name]

    produced = {o for n in body.nodes for o in n.outputs if o}
    for src, dst in zip(body.outputs, node.outputs):
        if dst and src in produced and src not in names:
            names[src] = dst  # the branch's node writes the If's output itself
    for name, v in body.values.items():
        new = rename(name)
        g.values[new] = Value(new, v.dtype, v.shape, v.const)
    local = set(body.values) | {o for n in body.nodes for o in n.outputs if o}
    out = [Node(n.op, n.name, [rename(i) if i in local else i for i in n.inputs],
                [rename(o) if o else o for o in n.outputs], n.attrs, n.domain) for n in body.nodes]
    for src, dst in zip(body.outputs, node.outputs):
        if dst and names.get(src) != dst:  # an outer value, a constant, or an output given twice
            out.append(Node("Identity", f"{node.name}/out", [rename(src) if src in local else src], [dst]))
    return out
