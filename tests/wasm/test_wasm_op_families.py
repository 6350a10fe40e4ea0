"""The op-family cases of tests/native/test_op_families.py (Reduce family, ScatterND, Mish, Mod, Clip, Pow of integer
bases) on the WebAssembly backend: every variant, relaxed and fixed SIMD, against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

from native.test_op_families import CASES
from wasm.check import check_wasm


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{g}-{c.__name__}") for g, cs in CASES.items() for c in cs])
def test_every_wasm_variant_matches_onnxruntime(case):
    model, feeds, options = case(np.random.default_rng(0))
    options.pop("all_variants", None)
    check_wasm(model, feeds, **options)
