"""`check_wasm` runs an ONNX case through webjit's WebAssembly backend and compares every output with onnxruntime.

The counterpart of `helpers.check_op` (same reference: onnxruntime's CPU execution provider with graph
optimisations off; same comparison): the plan runs on wasmtime instead of wgpu, and the variants swept are the
WebAssembly ones, in both their relaxed-SIMD and fixed-SIMD forms.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import onnx

from helpers import MAX_REPORTED, mismatch, reference


def check_wasm(model: onnx.ModelProto, feeds: dict, *, atol: float = 1e-4, rtol: float = 1e-4,
               expect_kinds=None, all_variants: bool = True):
    """Compile `model`, then compare all outputs with onnxruntime for
      1. the default variants on an engine without relaxed SIMD (it rejects modules that use relaxed SIMD, so the
         fixed forms are checked to be portable), as one module per plan;
      2. each kernel in turn through every variant of its WebAssembly space (relaxed and fixed forms) on a
         relaxed-SIMD engine, the other kernels at their defaults.
    expect_kinds: a set (kinds in the plan) or a list (kinds in order), as for check_op. Returns the plan."""
    import webjit
    from webjit.native.wasm_runner import WasmRunner

    onnx.checker.check_model(model, full_check=True)
    want = reference(model, feeds)
    with tempfile.TemporaryDirectory(prefix="webjit-wasm-test-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        plan = webjit.compile(path, values=feeds)
    kinds = [k.kind for k in plan.kernels]
    if isinstance(expect_kinds, (set, frozenset)):
        assert set(kinds) == set(expect_kinds), f"kernel kinds {sorted(set(kinds))}, expected {sorted(expect_kinds)}"
    elif expect_kinds is not None:
        assert kinds == list(expect_kinds), f"kernels {kinds} ({dict(Counter(kinds))}), expected {list(expect_kinds)}"

    failures: list[str] = []

    def compare(runner, label: str) -> None:
        try:
            got = runner.run(feeds)
        except Exception as e:  # a variant that does not assemble, compile or run is a failure of that variant
            failures.append(f"{label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            return
        assert set(got) == set(want), f"outputs {sorted(got)}, expected {sorted(want)}"
        for name, w in want.items():
            msg = mismatch(name, got[name], w, atol, rtol)
            if msg:
                failures.append(f"{label}: {msg}")

    compare(WasmRunner(plan, relaxed=False), "fixed-SIMD engine, default variants")
    runner = WasmRunner(plan)
    defaults = dict(runner.variants)
    compare(runner, "default variants (" + ", ".join(f"{n}={v.key}" for n, v in defaults.items()) + ")")
    checked = 2
    for i, k in enumerate(runner.plan.kernels if all_variants else []):
        assert k.space, f"kernel {k.name}: empty WebAssembly space"
        assert len({v.key for v in k.space}) == len(k.space), f"kernel {k.name}: duplicate variant keys"
        if k.kind in ("matmul", "attention"):
            assert {v.v["relaxed"] for v in k.space} == {0, 1}, f"kernel {k.name}: not both SIMD forms"
        for v in k.space:
            if v == defaults[k.name]:
                continue
            runner.set_variant(i, v)
            compare(runner, f"kernel {k.name} ({k.kind}, node '{k.node}') variant {v.key}")
            checked += 1
        runner.set_variant(i, defaults[k.name])
    assert not all_variants or checked > 2 or all(len(k.space) == 1 for k in runner.plan.kernels), "nothing swept"
    if failures:
        shown = "\n  ".join(failures[:MAX_REPORTED])
        more = f"\n  ... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
        raise AssertionError(f"{len(failures)} of {checked} runs mismatch onnxruntime:\n  {shown}{more}")
    return plan
