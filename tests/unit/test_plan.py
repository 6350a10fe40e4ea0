"""The arena: values alive at the same time never share a buffer, and reuse keeps the pool small."""
import onnx
from onnx import TensorProto, helper

import webjit


def _chain_model(tmp_path, n=8):
    nodes, prev = [], "x"
    for i in range(n):
        nodes.append(helper.make_node("Softmax", [prev], [f"s{i}"], axis=-1))
        nodes.append(helper.make_node("Add", [f"s{i}", prev], [f"a{i}"]))  # prev stays alive one more step
        prev = f"a{i}"
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)])
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_live_values_never_share_a_buffer(tmp_path):
    plan = webjit.compile(_chain_model(tmp_path), shapes={"x": (4, 64)})
    last = {}
    for i, k in enumerate(plan.kernels):
        for name in k.inputs:
            last[name] = i
    born = {o: i for i, k in enumerate(plan.kernels) for o in k.outputs}
    for a in born:
        for b in born:
            if a < b and plan.slots[a][0] == plan.slots[b][0]:
                end_a = last.get(a, len(plan.kernels)) if a not in plan.outputs else len(plan.kernels)
                end_b = last.get(b, len(plan.kernels)) if b not in plan.outputs else len(plan.kernels)
                assert end_a < born[b] or end_b < born[a], (a, b)


def test_reuse_needs_fewer_bytes_than_one_buffer_per_value(tmp_path):
    path = _chain_model(tmp_path)
    reused = webjit.compile(path, shapes={"x": (4, 64)})
    separate = webjit.compile(path, shapes={"x": (4, 64)}, reuse=False)
    assert reused.arena_bytes < separate.arena_bytes / 3
    assert len(separate.pool) == len({o for k in separate.kernels for o in k.outputs})


def test_load_time_kernels_come_first_named_by_their_new_position_and_never_write_an_output():
    from helpers import compile_model
    from native.test_load_time import load_time_model
    model, feeds = load_time_model()
    graph_order = [n.output[0] for n in model.graph.node]
    assert graph_order.index("y0") < graph_order.index("s")  # a kernel of every run comes first in the graph
    plan = compile_model(model, feeds)
    assert plan.load >= 4
    assert [k.name for k in plan.kernels] == [f"k{i:02d}_{k.kind}" for i, k in enumerate(plan.kernels)]
    reads_input = [i for i, k in enumerate(plan.kernels) if "x" in k.inputs]
    assert min(reads_input) >= plan.load
    writes_output = [i for i, k in enumerate(plan.kernels) if set(k.outputs) & set(plan.outputs)]
    assert min(writes_output) >= plan.load  # u reads only constants, but a run reads it from the arena
    assert "(%d once, at load)" % plan.load in plan.summary()


def test_a_plan_without_constant_work_runs_everything_every_time(tmp_path):
    plan = webjit.compile(_chain_model(tmp_path), shapes={"x": (4, 64)})
    assert plan.load == 0 and plan.loaded == {}
