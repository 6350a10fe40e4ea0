"""The WebAssembly backend's pure stages: tuning-space pruning, memory layout, rendered text. No runtime needed."""
import numpy as np
import pytest

import webjit
from webjit.render_wasm import CACHE_LINE, HEADER, layout, render, render_module
from webjit.space_wasm import L1_BYTES, WASM_MATMUL_TILES, attention_space, matmul_space, retarget


@pytest.mark.parametrize("registers", [16, 32])
def test_matmul_space_fits_the_register_file_and_l1(registers):
    space = matmul_space(77, 320, 1280, registers)
    assert 10 <= len(space) <= 100
    for v in space:
        d = v.v
        assert d["MR"] * d["NR"] + d["NR"] + 1 <= registers
        assert 4 * d["KB"] * (4 * d["NR"] + d["MR"]) <= L1_BYTES
    tiles = {(v.v["MR"], v.v["NR"]) for v in space}
    assert tiles < set(WASM_MATMUL_TILES) if registers == 16 else tiles == set(WASM_MATMUL_TILES)
    keys = [v.key for v in space]
    assert len(set(keys)) == len(keys)
    assert {k.replace("relaxed1", "relaxed0") for k in keys if "relaxed1" in k} == {k for k in keys if "relaxed0" in k}


def test_k_blocks_covering_all_of_k_are_deduplicated():
    blocks = {v.v["KB"] for v in matmul_space(128, 384, 100)}
    assert blocks == {128}
    assert {v.v["KB"] for v in matmul_space(128, 384, 1536)} == {128, 512}


def test_attention_space_prunes_by_registers():
    assert {(v.v["BQ"], v.v["EV"]) for v in attention_space(33, 16)} == {(1, 4), (2, 4), (1, 8)}
    assert {(4, 2), (4, 4), (2, 8)} <= {(v.v["BQ"], v.v["EV"]) for v in attention_space(33, 32)}
    assert {v.v["BQ"] for v in attention_space(1, 32)} == {1, 2}  # no more than twice the query rows


def _plan(tmp_path):
    import demo_models
    path = demo_models.cache_dir() / "llama" / "model.onnx"
    if not path.is_file():
        pytest.skip("the llama demo model is not exported")
    return webjit.compile(path, values=demo_models.sample_inputs("llama", seq=9))


def test_fixed_spaces_have_no_relaxed_simd_and_defaults_come_first(tmp_path):
    plan = _plan(tmp_path)
    relaxed, fixed = retarget(plan), retarget(plan, relaxed=False)
    for k, kf in zip(relaxed.kernels, fixed.kernels):
        assert all(v.v["relaxed"] == 0 for v in kf.space)
        if k.kind in ("matmul", "attention"):
            assert k.space[0].v["relaxed"] == 1 and len(kf.space) * 2 == len(k.space)
        assert "relaxed" not in render(kf, kf.space[0], plan.dtypes, layout(fixed))
    text = render_module(relaxed, {k.name: k.space[0] for k in relaxed.kernels}, layout(relaxed))
    assert "f32x4.relaxed_madd" in text and "(export \"run\"" in text and "memory.atomic" not in text


def test_layout_places_buffers_apart_and_aligned(tmp_path):
    plan = retarget(_plan(tmp_path))
    lay = layout(plan)
    regions = [(lay.offsets[n], a.nbytes) for n, a in plan.weights.items()]
    regions += [(lay.offsets[n], 4 * int(np.prod(plan.shapes[n]))) for n in plan.inputs]
    pool_at = {b: lay.offsets[n] for n, (b, _) in plan.slots.items()}  # values sharing a pool buffer share it
    assert all(lay.offsets[n] == pool_at[b] for n, (b, _) in plan.slots.items())
    regions += [(pool_at[b], size) for b, size in enumerate(plan.pool)]
    regions.sort()
    assert regions[0][0] >= HEADER and all(off % CACHE_LINE == 0 for off, _ in regions)
    for (a, n), (b, _) in zip(regions, regions[1:]):
        assert a + n <= b
    assert regions[-1][0] <= lay.scratch and lay.scratch + lay.threads * lay.scratch_per_thread <= lay.size
    assert lay.pages * 65536 >= lay.size


def test_shared_modules_synchronise_with_atomics(tmp_path):
    plan = retarget(_plan(tmp_path))
    text = render_module(plan, {k.name: k.space[0] for k in plan.kernels}, layout(plan), shared=True)
    assert "shared)" in text and "memory.atomic.wait32" in text and "memory.atomic.notify" in text
    assert text.count("(call $barrier") == len(plan.kernels)
