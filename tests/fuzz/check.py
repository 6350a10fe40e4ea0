"""Run one graph through webjit on both native backends and through onnxruntime, compare, and shrink failures.

A graph fails when webjit refuses it (every op in it is declared, in an element type the registry declares, so a
refusal is a bug), crashes, or gives outputs that differ from onnxruntime's by more than the tolerance: floats to
1e-3 relative to the output's magnitude (the graphs chain many ops, and onnxruntime itself reassociates), integers
and bools exactly, NaN equal to NaN.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

BACKENDS = ("webgpu", "wasm")
TOL = 1e-3


def reference(model: onnx.ModelProto, feeds: dict) -> dict:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 4  # a shrinking step may try an invalid cut: its error is an answer, not news
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, sess.run(names, feeds)))


def _runner(backend: str):
    if backend == "wasm":
        from webjit.native.wasm_runner import WasmRunner
        return WasmRunner
    from webjit.native.wgpu_runner import WgpuRunner
    return WgpuRunner


def differ(name: str, got, want) -> str | None:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"output '{name}': {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
    if want.dtype.kind != "f":
        bad = int((got != want).sum())
        return f"output '{name}': {bad}/{want.size} elements differ" if bad else None
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w)
    scale = max(1.0, float(np.abs(w[finite]).max()) if finite.any() else 1.0)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(g - w) <= TOL * scale) | (np.isnan(g) & np.isnan(w)) | (np.isinf(w) & (g == w))
    if ok.all():
        return None
    i = np.unravel_index(np.argmax(~ok), ok.shape)
    return (f"output '{name}': {int((~ok).sum())}/{ok.size} elements off by more than {TOL:g} of {scale:.3g}; "
            f"first at {list(map(int, i))}: got {g[i]!r}, expected {w[i]!r}")


def nudge(feeds: dict) -> dict:
    """The feeds with every float value moved by one part in a million (seeded: the same every time)."""
    rng = np.random.default_rng(0)
    return {n: (v * (1 + 1e-6 * rng.standard_normal(v.shape))).astype(v.dtype) if v.dtype.kind == "f" else v
            for n, v in feeds.items()}


def nudge_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its float initializers nudged as `nudge` does feeds: a graph of constants alone (which webjit
    folds at compile time) shows its sensitivity too."""
    from onnx import numpy_helper
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i, t in enumerate(out.graph.initializer):
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f":
            out.graph.initializer[i].CopyFrom(numpy_helper.from_array(nudge({"x": a})["x"], t.name))
    return out


def failure(model: onnx.ModelProto, feeds: dict, backends=BACKENDS) -> tuple[str, dict] | None:
    """(a one-line description, the plan's kernel kinds) of what goes wrong, or None. Kinds also when it passes."""
    import webjit
    from webjit.errors import WebjitError
    try:
        want = reference(model, feeds)
        nudged = reference(nudge_model(model), nudge(feeds))
    except Exception as e:  # noqa: BLE001 - onnxruntime rejects the graph: the generator's bug, reported as such
        return f"generator: onnxruntime rejects the graph: {str(e).splitlines()[0][:250]}", {}
    # an output that moves beyond the tolerance when the inputs (and the float constants) move by a millionth is
    # rounding noise the graph amplifies (say, a normalisation of a row that is constant, or a quantization of
    # tanh's result): no engine owes the reference's noise
    want = {name: w for name, w in want.items() if not differ(name, nudged[name], w)}
    with tempfile.TemporaryDirectory(prefix="webjit-fuzz-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        try:
            plan = webjit.compile(path, values=feeds)
        except WebjitError as e:
            return f"refused: {str(e).split('. Supported ops:')[0][:300]}", {}
        except Exception as e:  # noqa: BLE001 - any crash is what the fuzzer looks for
            return f"compile crashed: {type(e).__name__}: {e}"[:300], {}
    kinds = {}
    for k in plan.kernels:
        kinds[k.kind] = kinds.get(k.kind, 0) + 1
    for backend in backends:
        try:
            got = _runner(backend)(plan).run(feeds)
        except Exception as e:  # noqa: BLE001
            return f"{backend} run crashed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], kinds
        for name, w in want.items():
            msg = differ(name, got[name], w)
            if msg:
                return f"{backend}: {msg}", kinds
    return None, kinds


# -- shrinking ---------------------------------------------------------------------------------------------------
def _sub_model(model: onnx.ModelProto, outputs: list[str], nodes=None, cut=None) -> onnx.ModelProto:
    """The model cut down to what `outputs` need (types and shapes from ONNX's shape inference). cut: the name of
    a value to make a graph input instead of computing it."""
    nodes = list(model.graph.node) if nodes is None else nodes
    producer = {o: n for n in nodes for o in n.output if o != cut}
    need, keep = list(outputs), []
    seen = set()
    while need:
        name = need.pop()
        n = producer.get(name)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        keep.append(n)
        need += list(n.input)
    order = {id(n): i for i, n in enumerate(nodes)}
    keep.sort(key=lambda n: order[id(n)])
    used = {i for n in keep for i in n.input} | set(outputs)
    inferred = onnx.shape_inference.infer_shapes(model)
    info = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(model.graph.input)}
    inputs = [i for i in model.graph.input if i.name in used] + ([info[cut]] if cut else [])
    graph = onnx.helper.make_graph(
        keep, model.graph.name, inputs,
        [info[o] for o in outputs], [t for t in model.graph.initializer if t.name in used])
    return onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def shrink(model: onnx.ModelProto, feeds: dict, backends=BACKENDS, budget: int = 80):
    """A smaller model that still fails: first the single output with the fewest nodes behind it that fails; then,
    one at a time, a value made a graph input (fed what onnxruntime computes for it, so everything that only fed
    it goes), or a node bypassed (its output replaced by its first input). Returns (model, feeds)."""
    feeds = dict(feeds)

    def fails(m):
        try:
            onnx.checker.check_model(m, full_check=True)
            f = {n: v for n, v in feeds.items() if n in {i.name for i in m.graph.input}}
            return failure(m, f, backends)[0] is not None
        except Exception:  # noqa: BLE001 - a cut that makes the model invalid is no candidate
            return False

    tries = 0
    candidates = []
    for n in model.graph.node:
        for o in n.output:
            sub = _sub_model(model, [o])
            candidates.append((len(sub.graph.node), o, sub))
    best = model
    for _, _, sub in sorted(candidates, key=lambda c: c[0]):
        tries += 1
        if tries > budget // 2:
            break
        if fails(sub):
            best = sub
            break
    changed = True
    while changed and tries < budget:
        changed = False
        inits = {t.name for t in best.graph.initializer} | {i.name for i in best.graph.input}
        for name in [x for n in reversed(best.graph.node) for x in n.input if x and x not in inits]:
            if tries >= budget:
                break
            tries += 1
            try:
                value = reference(_sub_model(best, [name]), {k: v for k, v in feeds.items()
                                                             if k in {i.name for i in best.graph.input}})[name]
                cand = _sub_model(best, [o.name for o in best.graph.output], cut=name)
            except Exception:  # noqa: BLE001
                continue
            if len(cand.graph.node) < len(best.graph.node):
                feeds[name] = value
                if fails(cand):
                    best, changed = cand, True
                    break
                del feeds[name]
        if changed:
            continue
        for i, n in enumerate(list(best.graph.node)):
            if not n.input or tries >= budget:
                continue
            nodes = [x for j, x in enumerate(best.graph.node) if j != i]
            renamed = []
            for x in nodes:
                y = onnx.NodeProto()
                y.CopyFrom(x)
                y.input[:] = [n.input[0] if v == n.output[0] else v for v in y.input]
                renamed.append(y)
            outs = [n.input[0] if o.name == n.output[0] else o.name for o in best.graph.output]
            if any(o in {t.name for t in best.graph.initializer} for o in outs):
                continue
            tries += 1
            try:
                cand = _sub_model(best, outs, renamed)
            except Exception:  # noqa: BLE001
                continue
            if len(cand.graph.node) < len(best.graph.node) and fails(cand):
                best, changed = cand, True
                break
    return best, {n: v for n, v in feeds.items() if n in {i.name for i in best.graph.input}}


def save_case(directory: Path, name: str, model: onnx.ModelProto, feeds: dict, why: str) -> Path:
    """A regression case: NAME.onnx, NAME.npz (the feeds) and NAME.txt (what failed)."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / f"{name}.onnx"))
    np.savez(directory / f"{name}.npz", **feeds)
    (directory / f"{name}.txt").write_text(why + "\n")
    return directory / f"{name}.onnx"
