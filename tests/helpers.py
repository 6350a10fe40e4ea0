"""Test helpers. `check_op` is the one that runs cases: it runs an ONNX graph through webjit and checks every variant
of every kernel against onnxruntime (CPU execution provider). The rest build small ONNX graphs and compile them.

Expected values always come from onnxruntime, never from webjit itself and never from hand-typed numbers.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper as oh, numpy_helper as nh

MAX_REPORTED = 12  # failing (kernel, variant) pairs shown in full in one assertion message
POISON = 0x7FC0DEAD  # written over every intermediate buffer before each run: a NaN as f32, 2143346349 as i32
OPSET = 17
ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.int32): TensorProto.INT32, np.dtype(np.bool_): TensorProto.BOOL,
        np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


# -- building graphs -----------------------------------------------------------------------------------------------
def make_model(nodes, feeds: dict[str, np.ndarray], outputs: dict[str, type],
               inits: dict[str, np.ndarray] | None = None, opset: int = OPSET) -> onnx.ModelProto:
    """A model whose graph inputs are the feeds (typed and shaped by them), initializers `inits`, and outputs the
    names of `outputs` with their element types (shapes filled in by ONNX shape inference)."""
    graph = oh.make_graph(
        nodes, "case",
        [oh.make_tensor_value_info(n, ELEM[a.dtype], a.shape) for n, a in feeds.items()],
        [oh.make_tensor_value_info(n, ELEM[np.dtype(t)], None) for n, t in outputs.items()],
        [nh.from_array(np.asarray(a), n) for n, a in (inits or {}).items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)], ir_version=9)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def node(op, inputs, outputs, **attrs) -> onnx.NodeProto:
    return oh.make_node(op, list(inputs), list(outputs), **attrs)


def f32(rng, *shape, scale=1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def i64(*values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def compile_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]):
    """webjit.compile on a model held in memory (saved to a temporary file), with the feeds as sample values."""
    import webjit

    with tempfile.TemporaryDirectory(prefix="webjit-test-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        return webjit.compile(path, values=feeds)


# -- checking against onnxruntime ----------------------------------------------------------------------------------
def reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All graph outputs as onnxruntime's CPU execution provider computes them, with graph optimisations off so
    the reference is the plain op-by-op evaluation."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, sess.run(names, feeds)))


def mismatch(name: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> str | None:
    """None when `got` matches `want`, else a one-line description of the worst element."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"output '{name}': shape {list(got.shape)}, expected {list(want.shape)}"
    if got.dtype != want.dtype:
        return f"output '{name}': dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind != "f":
        bad = got != want
        if not bad.any():
            return None
        i = np.unravel_index(np.argmax(bad), bad.shape)
        return (f"output '{name}': {int(bad.sum())}/{bad.size} elements differ; first at {list(map(int, i))}: "
                f"got {got[i]}, expected {want[i]}")
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(g64 - w64)
        bad = ~((err <= atol + rtol * np.abs(w64)) | (np.isnan(g64) & np.isnan(w64))
                | (np.isinf(w64) & (g64 == w64)))
    if not bad.any():
        return None
    worst = np.where(bad, np.nan_to_num(err, nan=np.inf, posinf=np.inf), -1.0)
    i = np.unravel_index(np.argmax(worst), worst.shape)
    return (f"output '{name}': {int(bad.sum())}/{bad.size} elements out of tolerance (atol={atol}, rtol={rtol}); "
            f"worst at {list(map(int, i))}: got {got[i]!r}, expected {want[i]!r}")


def check_op(model: onnx.ModelProto, feeds: dict[str, np.ndarray], *, atol: float = 1e-4, rtol: float = 1e-4,
             expect_kinds: set[str] | list[str] | None = None, all_variants: bool | set[str] = True):
    """Compile `model` with webjit, run it through wgpu, and compare every output with onnxruntime.

    expect_kinds: a set is compared with the set of kernel kinds in the plan (so a test fails when fusion stops
      happening, or an unexpected copy kernel appears); a list is compared with the plan's kernel kinds in order,
      which pins the number of kernels too.
    all_variants: after the default variants, sweep each kernel in turn through every variant of its tuning space
      that fits this device (`prune(space, device_limits())`), the other kernels staying at their defaults, and
      compare all outputs after each. A set of kinds sweeps only the kernels of those kinds (each variant costs a
      shader compile, which is slow on lavapipe); False runs the default variants only. Failures are collected
      and reported together, each with the kernel name and the variant key. Before every run, all intermediate
      buffers are filled with a NaN pattern so that elements a variant fails to write cannot pass by keeping an
      earlier run's values (bool outputs excepted: any non-zero word reads as true).

    Returns the compiled plan, for further assertions.
    """
    from webjit.native.wgpu_runner import WgpuRunner, device_limits
    from webjit.space import prune

    onnx.checker.check_model(model, full_check=True)
    want = reference(model, feeds)
    plan = compile_model(model, feeds)
    kinds = [k.kind for k in plan.kernels]
    if isinstance(expect_kinds, (set, frozenset)):
        assert set(kinds) == set(expect_kinds), (
            f"kernel kinds {sorted(set(kinds))} (plan: {[k.name for k in plan.kernels]}), "
            f"expected {sorted(expect_kinds)}")
    elif expect_kinds is not None:
        assert kinds == list(expect_kinds), (
            f"kernels {kinds} ({dict(Counter(kinds))}), expected {list(expect_kinds)}")

    runner = WgpuRunner(plan)
    failures: list[str] = []

    poison = {b.size: np.full(b.size // 4, POISON, np.uint32).tobytes() for b in runner.arena}

    def compare(label: str) -> None:
        # Buffers keep their contents between runs: without this, a variant that skips some outputs would show
        # what the previous variant wrote there and pass.
        for b in runner.arena:
            runner.device.queue.write_buffer(b, 0, poison[b.size])
        try:
            got = runner.run(feeds)
        except Exception as e:  # a variant that does not compile or dispatch is a failure of that variant
            failures.append(f"{label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            return
        assert set(got) == set(want), f"outputs {sorted(got)}, expected {sorted(want)}"
        for name, w in want.items():
            msg = mismatch(name, got[name], w, atol, rtol)
            if msg:
                failures.append(f"{label}: {msg}")

    defaults = {k.name: runner.variants[k.name] for k in plan.kernels}
    compare("default variants (" + ", ".join(f"{n}={v.key}" for n, v in defaults.items()) + ")")
    checked = 1
    if isinstance(all_variants, (set, frozenset)):
        assert set(all_variants) <= set(kinds), f"no {sorted(set(all_variants) - set(kinds))} kernel to sweep"
    if all_variants:
        limits = device_limits()
        for i, k in enumerate(plan.kernels):
            if all_variants is not True and k.kind not in all_variants:
                continue
            fitting = prune(k.space, limits)
            assert fitting, f"kernel {k.name}: no variant of {len(k.space)} fits this device"
            assert len({v.key for v in fitting}) == len(fitting), f"kernel {k.name}: duplicate variant keys"
            for v in fitting:
                if v == defaults[k.name]:
                    continue
                runner.set_variant(i, v)
                compare(f"kernel {k.name} ({k.kind}, node '{k.node}') variant {v.key}")
                checked += 1
            runner.set_variant(i, defaults[k.name])
    if failures:
        shown = "\n  ".join(failures[:MAX_REPORTED])
        more = f"\n  ... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
        raise AssertionError(f"{len(failures)} of {checked} runs mismatch onnxruntime:\n  {shown}{more}")
    return plan
