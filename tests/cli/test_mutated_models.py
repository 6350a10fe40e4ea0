"""Broken ONNX files: flipped bits, truncations, overwritten and duplicated bytes, over-long varints, deep nesting,
huge or negative dims. Whatever the damage, webjit either compiles the file or refuses it with one WebjitError (on
the command line: one line, exit status 2), never a traceback.

The mutants come from a seeded generator over a small model with the ops exporters write most (Gather, MatMul,
LayerNormalization, Softmax, and a shape subgraph), so a failure is reproducible from its index."""
from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import webjit
from webjit.errors import WebjitError

MUTANTS = 1500
SHAPES = {"ids": (1, 5)}


def small_model() -> bytes:
    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]),
             helper.make_node("MatMul", ["e", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("LayerNormalization", ["a", "g", "b"], ["ln"], axis=-1),
             helper.make_node("Shape", ["ln"], ["s"]),
             helper.make_node("Reshape", ["ln", "s"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [w("table", 20, 16), w("w", 16, 16), w("b", 16), w("g", 16)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def mutant(data: bytes, seed: int) -> bytes:
    r = random.Random(seed)
    b = bytearray(data)
    kind = seed % 5
    if kind == 0:  # flip a few bits
        for _ in range(r.randint(1, 4)):
            p = r.randrange(len(b))
            b[p] ^= 1 << r.randrange(8)
    elif kind == 1:  # truncate
        b = b[:r.randrange(len(b))]
    elif kind == 2:  # overwrite a byte with a value that means something to a varint or a length
        b[r.randrange(len(b))] = r.choice([0, 0xFF, 0x7F, 0x80, r.randrange(256)])
    elif kind == 3:  # duplicate a run of bytes in place
        p = r.randrange(len(b))
        q = r.randrange(p, min(len(b), p + 40))
        b[q:q] = b[p:q]
    else:  # insert an over-long varint
        p = r.randrange(len(b))
        b[p:p] = bytes([0xFF] * 9 + [0x01])
    return bytes(b)


def outcome(path) -> str:
    try:
        webjit.compile(path, shapes=SHAPES)
        return "compiled"
    except WebjitError:
        return "refused"


def test_every_mutant_compiles_or_is_refused_with_a_webjit_error(tmp_path):
    data = small_model()
    seen = {"compiled": 0, "refused": 0}
    for seed in range(MUTANTS):
        path = tmp_path / f"mutant-{seed}.onnx"
        path.write_bytes(mutant(data, seed))
        try:
            seen[outcome(path)] += 1
        except Exception as e:  # noqa: BLE001 - anything but a WebjitError is the bug this test looks for
            pytest.fail(f"mutant {seed} ({type(e).__name__}: {e}) raised instead of a WebjitError")
    assert seen["compiled"] and seen["refused"], seen  # the mutations reach both outcomes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def deeply_nested(depth: int) -> bytes:
    """A model whose graph holds an If node whose branch holds an If node ... `depth` deep."""
    g = _field(2, b"g")
    for _ in range(depth):
        g = _field(1, _field(4, b"If") + _field(5, _field(1, b"then_branch") + _field(6, g)))
    return _field(7, g) + _field(8, _field(1, b"") + bytes([0x10, 18]))


def huge_dims(dims) -> bytes:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


@pytest.mark.parametrize("case", ["nested 5000 deep", "a dim of 2**40", "a negative dim", "a weight of 2**31 rows"])
def test_hostile_files_are_refused_in_one_line_with_exit_status_2(tmp_path, case):
    if case == "nested 5000 deep":
        data = deeply_nested(5000)
    elif case == "a dim of 2**40":
        data = huge_dims([1, 2 ** 40])
    elif case == "a negative dim":
        data = huge_dims([1, -3])
    else:  # an initializer that claims far more elements than its bytes hold
        t = numpy_helper.from_array(np.zeros((2, 4), np.float32), "w")
        t.dims[0] = 2 ** 31
        graph = helper.make_graph([helper.make_node("Relu", ["w"], ["y"])], "g", [],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [t])
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    path = tmp_path / "hostile.onnx"
    path.write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "webjit", "validate", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr[-2000:]
