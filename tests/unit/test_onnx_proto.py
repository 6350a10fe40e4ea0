"""The dependency-free ONNX reader agrees with the onnx package on every model it can read.

Expected values always come from onnx (onnx.load, helper.get_attribute_value, numpy_helper.to_array).
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from webjit import onnx_proto
from webjit.errors import WebjitError

CACHE = Path(__file__).resolve().parents[2] / "demo_models" / ".cache"
DEMO_MODELS = ["minilm", "bert_base", "gpt2", "llama"]


# ---------------------------------------------------------------------------------------------------------------
# Comparison against onnx

def np_dtype(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def check_tensor(ours: onnx_proto.Tensor, ref: TensorProto):
    assert ours.name == ref.name
    assert ours.dims == tuple(ref.dims), ref.name
    assert ours.dtype == np_dtype(ref.data_type), ref.name
    arr = numpy_helper.to_array(ref)
    if ref.data_type == TensorProto.STRING:
        assert ours.strings == [s if isinstance(s, bytes) else s.encode() for s in arr.ravel().tolist()]
    else:
        assert bytes(ours.data) == arr.astype(ours.dtype).tobytes(), ref.name


def check_value_info(ours: onnx_proto.ValueInfo, ref: onnx.ValueInfoProto):
    assert ours.name == ref.name
    if not ref.type.HasField("tensor_type"):
        assert ours.elem_type is None
        return
    tt = ref.type.tensor_type
    assert ours.elem_type == tt.elem_type and ours.dtype == np_dtype(tt.elem_type)
    if not tt.HasField("shape"):
        assert ours.shape is None
        return
    dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                 for d in tt.shape.dim)
    assert ours.shape == dims, ref.name


def f32_bytes(values) -> bytes:
    return np.array(values, dtype=np.float32).tobytes()


def check_attribute(ours: onnx_proto.Attribute, ref: onnx.AttributeProto):
    assert ours.name == ref.name and ours.type == ref.type
    want = helper.get_attribute_value(ref)
    A = onnx.AttributeProto
    if ref.type == A.FLOAT:
        assert isinstance(ours.value, float) and f32_bytes(ours.value) == f32_bytes(want)
    elif ref.type == A.FLOATS:
        assert f32_bytes(ours.value) == f32_bytes(want) and len(ours.value) == len(want)
    elif ref.type == A.TENSOR:
        check_tensor(ours.value, want)
    elif ref.type == A.TENSORS:
        assert len(ours.value) == len(want)
        for o, w in zip(ours.value, want):
            check_tensor(o, w)
    elif ref.type == A.GRAPH:
        check_graph(ours.value, want)
    elif ref.type == A.GRAPHS:
        assert len(ours.value) == len(want)
        for o, w in zip(ours.value, want):
            check_graph(o, w)
    else:  # INT, INTS, STRING, STRINGS
        assert ours.value == want, ref.name


def check_graph(ours: onnx_proto.Graph, ref: onnx.GraphProto):
    assert ours.name == ref.name
    for mine, theirs, check in [(ours.inputs, ref.input, check_value_info),
                                (ours.outputs, ref.output, check_value_info),
                                (ours.value_info, ref.value_info, check_value_info),
                                (ours.initializers, ref.initializer, check_tensor)]:
        assert len(mine) == len(theirs)
        for o, r in zip(mine, theirs):
            check(o, r)
    assert len(ours.nodes) == len(ref.node)
    for o, r in zip(ours.nodes, ref.node):
        assert (o.op_type, o.name, o.domain) == (r.op_type, r.name, r.domain)
        assert (o.inputs, o.outputs) == (list(r.input), list(r.output)), r.name
        assert len(o.attributes) == len(r.attribute), r.name
        for a, b in zip(o.attributes, r.attribute):
            check_attribute(a, b)


def check_model(ours: onnx_proto.Model, ref: onnx.ModelProto):
    assert ours.ir_version == ref.ir_version and ours.producer_name == ref.producer_name
    assert ours.opset_import == {o.domain: o.version for o in ref.opset_import}
    check_graph(ours.graph, ref.graph)


# ---------------------------------------------------------------------------------------------------------------
# The demo models

@pytest.mark.models
@pytest.mark.parametrize("name", DEMO_MODELS)
def test_demo_model_reads_like_onnx(name):
    import demo_models
    if not (CACHE / name / "model.onnx").is_file():
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    path = demo_models.get(name)
    check_model(onnx_proto.load(path), onnx.load(str(path)))


# ---------------------------------------------------------------------------------------------------------------
# Small models built with onnx.helper

def small_model() -> onnx.ModelProto:
    """One initializer per storage field and one attribute of every handled type."""
    rng = np.random.default_rng(0)
    tensors = [
        helper.make_tensor("f32", TensorProto.FLOAT, [2, 3], rng.standard_normal(6).astype(np.float32)),
        helper.make_tensor("f64", TensorProto.DOUBLE, [3], [1.5, -2.25, 1e300]),
        helper.make_tensor("i64", TensorProto.INT64, [4], [0, -1, 2**62, -2**63]),
        helper.make_tensor("i32", TensorProto.INT32, [3], [-5, 7, 2**31 - 1]),
        helper.make_tensor("i16", TensorProto.INT16, [2], [-300, 300]),
        helper.make_tensor("i8", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("u8", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("u16", TensorProto.UINT16, [2], [1, 65535]),
        helper.make_tensor("u32", TensorProto.UINT32, [2], [1, 2**32 - 1]),
        helper.make_tensor("u64", TensorProto.UINT64, [2], [1, 2**64 - 1]),
        helper.make_tensor("b", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("f16", TensorProto.FLOAT16, [2], np.array([1.5, -65504], np.float16)),
        helper.make_tensor("c64", TensorProto.COMPLEX64, [2], [1 + 2j, -3j]),
        helper.make_tensor("scalar", TensorProto.FLOAT, [], [4.0]),
        helper.make_tensor("s", TensorProto.STRING, [2], [b"ab", "\u00e9".encode()]),
        numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "raw_f32"),
        numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3) - 3, "raw_i64"),
    ]
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["y_then"])], "then",
                             [], [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["y_else"])], "else",
                              [], [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [2, "n"])])
    nodes = [
        helper.make_node("Foo", ["x", "", "f32"], ["y"], name="all_attributes", domain="test.domain",
                         f=0.1, i=-7, big=2**62, s="h\u00e9llo", t=tensors[0], g=then, floats=[0.1, -2.5, 1e-30],
                         ints=[-1, 0, 2**40, -2**63], strings=["a", "b"], tensors=tensors[1:3], graphs=[then, other]),
        helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=other),
        helper.make_node("Constant", [], ["c"], value=tensors[3]),
    ]
    nodes[0].attribute.append(helper.make_attribute("empty_ints", [], attr_type=onnx.AttributeProto.INTS))
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("unknown_rank", TensorProto.INT64, None),
         helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [None, 0, "n"])],
        tensors, value_info=[helper.make_tensor_value_info("z", TensorProto.DOUBLE, [1])])
    return helper.make_model(graph, producer_name="webjit-test",
                             opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("test.domain", 2)])


def test_small_model_reads_like_onnx():
    model = small_model()
    data = model.SerializeToString()
    ours = onnx_proto.parse(data)
    check_model(ours, onnx.load_from_string(data))
    assert ours.opset == 18
    attrs = ours.graph.nodes[0].attrs
    assert attrs["i"] == -7 and attrs["ints"][-1] == -2**63 and attrs["empty_ints"] == []


def test_external_data_reads_like_onnx(tmp_path):
    model = small_model()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    ref = onnx.load(str(tmp_path / "m.onnx"))
    assert any(external_data_helper.uses_external_data(t) for t in onnx.load(str(tmp_path / "m.onnx"),
               load_external_data=False).graph.initializer)
    check_model(onnx_proto.load(tmp_path / "m.onnx"), ref)
    check_model(onnx_proto.parse((tmp_path / "m.onnx").read_bytes(), tmp_path), ref)
    with pytest.raises(WebjitError, match="needs external data file 'weights.bin'"):
        onnx_proto.parse((tmp_path / "m.onnx").read_bytes())  # no folder given


def external_model(tmp_path: Path, location: str, offset: int = 0, length: int | None = 24) -> Path:
    t = numpy_helper.from_array(np.arange(6, dtype=np.float32), "w")
    kw = {} if length is None else {"length": length}
    external_data_helper.set_external_data(t, location=location, offset=offset, **kw)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6])], [t])
    (tmp_path / "model").mkdir(exist_ok=True)
    path = tmp_path / "model" / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def test_external_data_offset_and_length(tmp_path):
    path = external_model(tmp_path, "w.bin", offset=8)
    (path.parent / "w.bin").write_bytes(b"\xff" * 8 + np.arange(6, dtype=np.float32).tobytes() + b"\xff" * 4)
    check_model(onnx_proto.load(path), onnx.load(str(path)))
    path = external_model(tmp_path, "w.bin", offset=8, length=None)  # no length: to the end of the file
    assert bytes(onnx_proto.load(path).graph.initializers[0].data) == bytes(onnx.load(str(path)).graph.initializer[0].raw_data)


@pytest.mark.parametrize("location,message", [
    ("missing.bin", "tensor 'w' needs external data file 'missing.bin', which is missing"),
    ("../outside.bin", "tensor 'w' names external data file '../outside.bin', which is outside the model's folder"),
    ("/etc/hostname", "tensor 'w' names external data file '/etc/hostname', which is outside the model's folder"),
    ("link.bin", "tensor 'w' names external data file 'link.bin', which is outside the model's folder"),
    ("short.bin", "external data file 'short.bin' is truncated \\(tensor 'w'\\)"),
])
def test_bad_external_data_is_a_clear_error(tmp_path, location, message):
    path = external_model(tmp_path, location)
    (tmp_path / "outside.bin").write_bytes(bytes(24))  # exists, but outside the model's folder
    (path.parent / "link.bin").symlink_to(tmp_path / "outside.bin")  # inside, but it points outside
    (path.parent / "short.bin").write_bytes(bytes(20))
    with pytest.raises(WebjitError, match=message):
        onnx_proto.load(path)


# ---------------------------------------------------------------------------------------------------------------
# Packed and unpacked repeated fields, written by hand (onnx packs float_data and never packs ints or dims)

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(num: int, wire: int, payload: bytes) -> bytes:
    return varint(num << 3 | wire) + (varint(len(payload)) + payload if wire == 2 else payload)


def packed(num: int, values, item) -> bytes:
    return field(num, 2, b"".join(item(v) for v in values))


def test_packed_and_unpacked_repeated_fields():
    floats, ints, dims = [0.5, -1.25, 3e38], [-3, 1, 2**40], [2, 3]
    unpacked_floats = b"".join(field(4, 5, struct.pack("<f", v)) for v in [1.0, 2.0, -0.5, 7.0, 8.0, 9.0])
    float_tensor = (packed(1, dims, varint) + field(2, 0, varint(TensorProto.FLOAT)) + field(8, 2, b"uf")
                    + unpacked_floats)
    int_tensor = (b"".join(field(1, 0, varint(d)) for d in [3]) + field(2, 0, varint(TensorProto.INT64))
                  + field(8, 2, b"ui") + b"".join(field(7, 0, varint(v)) for v in [-1, 5, -2**63]))
    double_tensor = (field(1, 0, varint(2)) + field(2, 0, varint(TensorProto.DOUBLE)) + field(8, 2, b"ud")
                     + b"".join(field(10, 1, struct.pack("<d", v)) for v in [0.1, -2.0]))
    mixed_tensor = (field(1, 0, varint(4)) + field(2, 0, varint(TensorProto.INT32)) + field(8, 2, b"mixed")
                    + packed(5, [1, -2], varint) + field(5, 0, varint(3)) + packed(5, [-4], varint))
    attributes = [field(1, 2, b"pf") + field(20, 0, varint(6)) + packed(7, floats, lambda v: struct.pack("<f", v)),
                  field(1, 2, b"pi") + field(20, 0, varint(7)) + packed(8, ints, varint),
                  field(1, 2, b"ui") + field(20, 0, varint(7)) + b"".join(field(8, 0, varint(v)) for v in ints)]
    node = (field(1, 2, b"x") + field(2, 2, b"y") + field(4, 2, b"Foo")
            + b"".join(field(5, 2, a) for a in attributes))
    output = field(1, 2, b"y")
    graph = (field(1, 2, node) + field(2, 2, b"hand") + b"".join(field(5, 2, t) for t in
             [float_tensor, int_tensor, double_tensor, mixed_tensor]) + field(12, 2, output))
    data = field(1, 0, varint(8)) + field(8, 2, field(2, 0, varint(18))) + field(7, 2, graph)
    check_model(onnx_proto.parse(data), onnx.load_from_string(data))


# ---------------------------------------------------------------------------------------------------------------
# Malformed input

def test_truncated_and_garbage_files_are_webjit_errors(tmp_path):
    data = small_model().SerializeToString()
    for cut in [1, 2, 10, len(data) // 3, len(data) // 2, len(data) - 1]:
        with pytest.raises(WebjitError, match="not an ONNX model"):
            onnx_proto.parse(data[:cut])
    rng = random.Random(0)
    for _ in range(200):
        with pytest.raises(WebjitError, match="not an ONNX model"):
            onnx_proto.parse(rng.randbytes(rng.randrange(0, 300)))
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model at all")
    with pytest.raises(WebjitError, match="bad.onnx: not an ONNX model"):
        onnx_proto.load(tmp_path / "bad.onnx")
    with pytest.raises(WebjitError, match="no such file"):
        onnx_proto.load(tmp_path / "absent.onnx")


@pytest.mark.parametrize("data,why", [
    (b"", "no graph"),
    (field(1, 0, b"\x80\x80"), "truncated varint"),
    (field(1, 0, b"\xff" * 11), "varint longer than 10 bytes"),
    (varint(7 << 3 | 2) + varint(100) + b"abc", "runs past the end"),
    (field(7, 0, varint(5)), "wire type 0, expected 2"),
    (field(7, 2, field(2, 5, b"abcd")), "wire type 5, expected 2"),
    (varint(7 << 3 | 3), "wire type 3"),
    (field(7, 2, field(2, 2, b"\xff\xfe")), "not UTF-8"),
    (field(7, 2, field(5, 2, field(2, 0, varint(99))) + field(12, 2, field(1, 2, b"y"))), "unknown data type 99"),
])
def test_malformed_bytes_say_why(data, why):
    with pytest.raises(WebjitError, match=f"not an ONNX model \\(.*{why}"):
        onnx_proto.parse(data)


def test_unhandled_attribute_types_are_a_clear_error():
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(1, np.float32), "v"),
                                       numpy_helper.from_array(np.zeros(1, np.int64), "i"), [3])
    model = small_model()
    model.graph.node[0].attribute.append(helper.make_attribute("sp", sparse))
    with pytest.raises(WebjitError, match="attribute 'sp' of node 'all_attributes' holds a sparse_tensor"):
        onnx_proto.parse(model.SerializeToString())


def test_reader_needs_only_the_standard_library(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "m.onnx"
    onnx.save(small_model(), str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    code = ("import sys\n"
            "for m in ('numpy', 'onnx', 'google', 'google.protobuf'): sys.modules[m] = None\n"
            "import importlib.util as u\n"
            f"s = u.spec_from_file_location('webjit.onnx_proto', {str(Path(onnx_proto.__file__))!r})\n"
            "import types; pkg = types.ModuleType('webjit'); pkg.__path__ = []; sys.modules['webjit'] = pkg\n"
            f"e = u.spec_from_file_location('webjit.errors', {str(Path(onnx_proto.__file__).with_name('errors.py'))!r})\n"
            "em = u.module_from_spec(e); sys.modules['webjit.errors'] = em; e.loader.exec_module(em)\n"
            "m = u.module_from_spec(s); sys.modules['webjit.onnx_proto'] = m; s.loader.exec_module(m)\n"
            f"g = m.load({str(path)!r}).graph\n"
            "print(len(g.nodes), len(g.initializers), type(g.initializers[-1].data).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["3", "17", "memoryview"]
