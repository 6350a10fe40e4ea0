"""Padding that a dynamically quantized model does not see.

DynamicQuantizeLinear scales a tensor by its whole range, so the rows a length bucket pads on change the scale of
the real rows: a quantize_dynamic model's outputs at the real positions move with the padding (all-MiniLM-L6-v2's
q8 file: by 0.13), and it could not be bucketed. But the range always holds 0. Multiplying each such input by the
attention mask along the sequence axis first makes the padded rows 0, which leaves the range, and so every real
row's quantization, exactly as without padding. This module rewrites the ONNX file that way for a bucketed build;
both webjit and the check with onnxruntime that padding changes nothing then read the rewritten file.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

MASK = "attention_mask"


def _dql_seq_axes(model, symbol_input: str, size: int) -> dict[str, int]:
    """Per DynamicQuantizeLinear input whose axis 1 follows the inputs' sequence length (found by inferring the
    shapes at two lengths), its rank."""
    import onnx
    from onnx import shape_inference

    def shapes(n: int) -> dict[str, list]:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        for i in m.graph.input:
            dims = i.type.tensor_type.shape.dim
            if len(dims) == 2 and i.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
                dims[0].dim_value, dims[1].dim_value = 1, n
        m = shape_inference.infer_shapes(m, data_prop=True)
        known = {v.name: v for v in list(m.graph.value_info) + list(m.graph.input)}
        out = {}
        for node in m.graph.node:
            if node.op_type == "DynamicQuantizeLinear" and node.input[0] in known:
                out[node.input[0]] = [d.dim_value if d.HasField("dim_value") else None
                                      for d in known[node.input[0]].type.tensor_type.shape.dim]
        return out

    a, b = shapes(size), shapes(size + 1)
    axes = {}
    for name, dims in a.items():
        other = b.get(name)
        if other is None or len(other) != len(dims) or len(dims) < 2:
            continue
        moved = [i for i, (x, y) in enumerate(zip(dims, other)) if x == size and y == size + 1]
        if moved == [1] and dims[0] in (1, None):
            axes[name] = len(dims)
    return axes


@contextlib.contextmanager
def masked_quantization(model_path, inputs: list[str], size: int):
    """The path of `model_path` rewritten so that padded rows do not reach DynamicQuantizeLinear (or the path
    itself when nothing needs it), valid inside the `with`."""
    import onnx
    from onnx import helper
    if MASK not in inputs:
        yield model_path
        return
    model = onnx.load(str(model_path), load_external_data=False)
    if not any(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node):
        yield model_path
        return
    model = onnx.load(str(model_path))
    axes = _dql_seq_axes(model, MASK, size)
    if not axes:
        yield model_path
        return
    g = model.graph
    taken = {o for n in g.node for o in n.output} | {i.name for i in g.input} | {t.name for t in g.initializer}

    def fresh(base: str) -> str:
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        return name

    mask_f = fresh("webjit_padding/mask")
    added = [helper.make_node("Cast", [MASK], [mask_f], to=onnx.TensorProto.FLOAT, name=fresh("webjit_padding/cast"))]
    by_rank: dict[int, str] = {}
    rewritten = []
    for node in g.node:
        if node.op_type == "DynamicQuantizeLinear" and node.input[0] in axes:
            x = node.input[0]
            rank = axes[x]
            if rank not in by_rank:  # [batch, seq] -> [batch, seq, 1, ...] to broadcast over the other axes
                axes_name = fresh("webjit_padding/axes")
                g.initializer.append(onnx.numpy_helper.from_array(np.arange(2, rank, dtype=np.int64), axes_name))
                by_rank[rank] = fresh(f"webjit_padding/mask_rank{rank}")
                added.append(helper.make_node("Unsqueeze", [mask_f, axes_name], [by_rank[rank]],
                                              name=fresh("webjit_padding/unsqueeze")))
            zeroed = fresh(x + "/padding_zeroed")
            rewritten.append(helper.make_node("Mul", [x, by_rank[rank]], [zeroed], name=fresh(f"{node.name}/zero_padding")))
            node.input[0] = zeroed
        rewritten.append(node)
    del g.node[:]
    g.node.extend(added + rewritten)  # each Mul sits just before its reader, after the producer of its input
    with tempfile.TemporaryDirectory(prefix="webjit-padding-") as tmp:
        out = Path(tmp) / Path(model_path).name
        onnx.save(model, str(out), save_as_external_data=model.ByteSize() > 1_900_000_000)
        yield out
