"""Compile a model, run it natively, and compare every output with onnxruntime on the same inputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .stages import compile as compile_model
from .onnx_import import import_onnx, load_model
from .progress import Progress
from .shapes import bind_inputs
from .space import prune


def generate_inputs(model: str | Path, shapes: dict[str, tuple] | None = None, seed: int = 0) -> dict:
    """Valid inputs for a transformer: token ids within the vocabulary (read off the embedding a Gather uses),
    all-ones attention masks, zero token types, positions 0..n-1, and standard normal floats."""
    g = import_onnx(model)
    bind_inputs(g, shapes or {}, {})
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in g.inputs:
        v = g.values[name]
        lname = name.lower()
        vocab = [g.values[n.inputs[0]].shape[n.attrs.get("axis", 0)] for n in g.nodes
                 if n.op == "Gather" and n.input(1) == name and g.values[n.inputs[0]].const is not None]
        if v.dtype == "bool":
            feeds[name] = np.ones(v.shape, bool)
        elif v.dtype.startswith("float"):
            feeds[name] = rng.standard_normal(v.shape).astype(v.dtype)
        elif "mask" in lname:
            feeds[name] = np.ones(v.shape, v.dtype)
        elif "position" in lname:
            feeds[name] = np.broadcast_to(np.arange(v.shape[-1]), v.shape).astype(v.dtype)
        elif "type" in lname or not vocab:
            feeds[name] = np.zeros(v.shape, v.dtype)
        else:
            feeds[name] = rng.integers(1, min(vocab), v.shape).astype(v.dtype)
    return feeds


def reference(model: str | Path, feeds: dict, extra: list[str] = ()) -> dict[str, np.ndarray]:
    """onnxruntime (CPU) outputs; extra: intermediate values to return as well."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if extra:
        import onnx
        m = onnx.load(str(model))  # with its external data
        known = {o.name for o in m.graph.output}
        m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra if n not in known)
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    else:
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in wanted})))


def max_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest absolute difference; NaN where both are NaN counts as equal, elsewhere as infinitely wrong."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    if got.dtype == bool or want.dtype == bool:
        return float(np.any(got.astype(bool) != want.astype(bool)))
    g, w = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    diff = np.where(both_nan, 0.0, np.abs(g - w))
    diff = np.where(np.isnan(diff) | (np.isinf(g) != np.isinf(w)), np.inf, diff)
    same_inf = np.isinf(g) & (g == w)
    return float(np.max(np.where(same_inf, 0.0, diff)))


@dataclass
class Report:
    errors: dict[str, float]                                     # output -> max abs error
    passed: dict[str, bool] = field(default_factory=dict)        # output -> every element within atol + rtol|ref|
    kernels: list[dict] = field(default_factory=list)           # per kernel: name, kind, node, checked, worst
    atol: float = 1e-4
    summary: str = ""

    @property
    def ok(self) -> bool:
        return all(self.passed.values()) and all(k["worst"] <= k["tol"] for k in self.kernels)


def close(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> bool:
    """Every element within atol + rtol * |want| (NaN matches NaN; ints and bools exactly)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind != "f":
        return bool(np.array_equal(got.astype(want.dtype), want))
    return bool(np.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True))


def validate(model: str | Path, feeds: dict, *, shapes=None, variants: str = "default", atol: float = 1e-4,
             rtol: float = 1e-6, dump=None, backend: str = "webgpu") -> tuple[Report, dict]:
    every = variants == "all"
    plan = compile_model(model, shapes, feeds, reuse=not every, dump=dump)
    if backend == "wasm":
        from .native.wasm_runner import WasmRunner
        runner, limits = WasmRunner(plan, dump=dump), {}
        plan = runner.plan  # the same kernels, with the WebAssembly tuning spaces
    else:
        from .native.wgpu_runner import WgpuRunner, device_limits
        runner, limits = WgpuRunner(plan), device_limits()
    ours = runner.run(feeds)
    names = sorted({o for k in plan.kernels for o in k.outputs}) if every else []
    known = set(names) & _value_names(model)
    ref = reference(model, feeds, sorted(known))
    report = Report({o: max_error(ours[o], ref[o]) for o in plan.outputs},
                    {o: close(ours[o], ref[o], atol, rtol) for o in plan.outputs}, atol=atol, summary=plan.summary())
    for i, k in enumerate(plan.kernels):
        report.kernels.append({"name": k.name, "kind": k.kind, "node": k.node,
                               "variants": len(prune(k.space, limits)),
                               "checked": 0, "worst": 0.0, "tol": 0.0, "worst_variant": ""})
    if every:
        _check_all_variants(runner, plan, ref, known, report, limits, atol)
    return report, ours


def _tol(want: np.ndarray, atol: float) -> float:
    """atol for values up to 1 in magnitude, relative beyond: float32 keeps ~7 digits whatever the scale."""
    w = np.asarray(want)
    finite = w[np.isfinite(w)] if w.dtype.kind == "f" else w
    if not finite.size or w.dtype == bool:
        return atol
    return atol * max(1.0, float(np.max(np.abs(finite))))


def _value_names(model) -> set[str]:
    m = load_model(model)
    return {o for n in m.graph.nodes for o in n.outputs}


def _check_all_variants(runner, plan, ref, known, report, limits, atol) -> None:
    """Each variant of each kernel runs alone on the inputs the default variants left in place (the plan keeps
    every intermediate). Its output is compared with onnxruntime's value of the same tensor, or, for tensors
    onnxruntime does not have (copies webjit made), with the default variant's output, checked downstream."""
    baseline = {o: runner.read(o) for k in plan.kernels for o in k.outputs}
    bar = Progress("variants", len(plan.kernels))
    for i, k in enumerate(plan.kernels):
        row = report.kernels[i]
        default = runner.variants[k.name]
        for v in prune(k.space, limits):
            runner.set_variant(i, v)
            runner.run_kernels([i])
            for o in k.outputs:
                want = ref[o] if o in known else baseline[o]
                err = max_error(runner.read(o), want)
                tol = _tol(want, atol)
                row["tol"] = max(row["tol"], tol)
                if err > row["worst"]:
                    row["worst"], row["worst_variant"] = err, v.key
            row["checked"] += 1
        runner.set_variant(i, default)
        runner.run_kernels([i])
        bar(i + 1, note=k.name)
