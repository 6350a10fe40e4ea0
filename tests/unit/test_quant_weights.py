"""Quantized matmul weights stay quantized through fusion and planning: int8 as bytes and int4 as nibbles packed
into uint32 words, with their scales, and no float32 copy of them."""
from __future__ import annotations

import numpy as np

from helpers import compile_model
from native.test_quant import dynamic_quantized_linear_layer, matmul_nbits_model


def test_an_int8_weight_is_planned_as_one_byte_per_value():
    model, feeds, _ = dynamic_quantized_linear_layer(np.random.default_rng(0))
    plan = compile_model(model, feeds)
    kinds = [k.kind for k in plan.kernels]
    assert kinds.count("matmul") == 1
    packed = [w for w in plan.weights.values() if w.dtype == "uint32"]
    # K = 40 rows of N = 11 bytes, padded to a panel of 16 columns, then the panel's 16 column sums as int32
    assert [w.nbytes for w in packed] == [40 * 16 + 4 * 16]
    assert all(w.dtype != "int32" or w.size < 40 for w in plan.weights.values())


def test_an_int4_weight_is_planned_as_nibbles_with_block_scales():
    rng = np.random.default_rng(0)
    model, feeds = matmul_nbits_model(rng, (3,), 100, 13, 32, zero_points=True, bias=False)
    plan = compile_model(model, feeds)
    sizes = sorted(w.nbytes for w in plan.weights.values())
    # zero points: 4 blocks x 16 nibbles; weights: 100 rows x 16 nibbles; scales: 4 blocks x 16 float32
    assert sizes == [4 * 16 // 2, 4 * 16 * 4, 100 * 16 // 2]


def test_an_int8_embedding_table_is_planned_as_bytes_and_only_gathered_rows_are_dequantized():
    from native.test_quant import gather_of_a_dequantized_int8_table
    model, feeds, _ = gather_of_a_dequantized_int8_table(np.random.default_rng(0))
    plan = compile_model(model, feeds)
    assert [w.nbytes for w in plan.weights.values()] == [30 * 8]  # 30 rows of 6 bytes, padded to 8
    assert plan.kernels[0].kind == "gather" and plan.kernels[0].params["quant"]["bits"] == 8
