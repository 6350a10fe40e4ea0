"""WEBJIT_DUMP (or compile(dump=DIR)) writes what each stage produced: the imported, specialised and fused graphs,
the graph after every fuse pass, each kernel's default variant as WGSL and as WebAssembly text, and the plan."""
from __future__ import annotations

import json

import numpy as np
import onnx

import webjit
from webjit.fuse import PASSES
from helpers import f32, make_model, node


def test_the_dump_has_every_stage_every_fuse_pass_and_both_backends_kernels(tmp_path):
    rng = np.random.default_rng(0)
    feeds = {"x": f32(rng, 2, 8)}
    model = make_model([node("MatMul", ["x", "w"], ["m"]), node("Add", ["m", "b"], ["a"]), node("Relu", ["a"], ["y"])],
                       feeds, {"y": np.float32}, {"w": f32(rng, 8, 4), "b": f32(rng, 4)})
    onnx.save(model, tmp_path / "m.onnx")
    plan = webjit.compile(tmp_path / "m.onnx", values=feeds, dump=tmp_path / "dump")
    names = {p.name for p in (tmp_path / "dump").iterdir()}
    assert {"graph.txt", "graph.specialized.txt", "graph.fused.txt", "plan.json"} <= names
    passes = sorted(n for n in names if n.startswith("graph.fused.") and n != "graph.fused.txt")
    assert [p.split("_", 1)[1][:-4] for p in passes] == [p.__name__ for p in PASSES]
    # the elementwise chain is gone after the epilogue pass, and the last pass's graph is the fused graph
    assert "Relu" in (tmp_path / "dump" / passes[0]).read_text()
    assert (tmp_path / "dump" / passes[-1]).read_text() == (tmp_path / "dump" / "graph.fused.txt").read_text()
    for k in plan.kernels:
        assert any(n.startswith(k.name + ".") and n.endswith(".wgsl") for n in names), k.name
        wat = next(tmp_path / "dump" / n for n in names if n.startswith(k.name + ".") and n.endswith(".wat"))
        assert wat.read_text().lstrip().startswith(";;") or "(func" in wat.read_text()
    steps = json.loads((tmp_path / "dump" / "plan.json").read_text())["steps"]
    assert [s["kernel"] for s in steps] == [k.name for k in plan.kernels]
