"""The quantization op cases of tests/native/test_quant.py on the WebAssembly backend, every variant."""
from __future__ import annotations

import numpy as np
import pytest

from native.test_quant import NBITS, QUANT
from wasm.check import check_wasm


@pytest.mark.parametrize("case", QUANT + NBITS, ids=lambda c: c.__name__)
def test_quantization_op_matches_onnxruntime_on_wasm_in_every_variant(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_wasm(model, feeds, **options)
