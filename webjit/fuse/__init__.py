"""Stage 3: rewrite the specialised graph into the nodes webjit has kernels for.

Passes, in order:
  lower_conv       Conv, ConvInteger -> im2col patches (a view where the kernel tiles the input) @ the laid-out
                   weight: MatMul, or MatMulInteger for the next pass (fuse/conv.py)
  quantized_weights  MatMulInteger (constant B), MatMulNBits -> QMatMul, Gather of int8 tables -> QGather: weights
                     stay quantized (fuse/quant.py)
  decompose_quant  QuantizeLinear family, MatMulInteger -> Elementwise, Reduce*, MatMul (fuse/quant.py)
  canonicalize     Gemm -> MatMul + elementwise (transposes as views); Dropout -> Identity; Split -> Slices
  split_weights    weights over the 128 MiB binding limit -> chunks
  layernorm        decomposed ReduceMean/Sub/Pow/Sqrt/Div (+Mul/Add) -> LayerNormalization
  rmsnorm          Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul (+Mul) -> RMSNorm
  elementwise      chains of elementwise ops -> one Elementwise node with straight-line code
  attention        MatMul -> [Elementwise] -> Softmax -> [NaN guard] -> MatMul -> Attention
  out_transpose    Attention -> Transpose: the attention kernel writes the transposed layout
  epilogue         MatMul -> Elementwise -> one MatMul with the elementwise code as epilogue
  views            Reshape/Transpose/Slice/Expand/... -> strided views on the producer's buffer; copies where a
                   consumer needs a dense buffer
  share            kernels that differ only in inlined float constants (per-layer quantization scales) read them
                   from one-element weights, so that identical layers share one kernel source (fuse/share.py)

"""
from __future__ import annotations

from ..ir import Graph
from .canonical import canonicalize, split_large_weights
from .conv import lower_conv
from .chains import fold_output_transpose, fuse_attention, fuse_elementwise, fuse_epilogue
from .layout import resolve_views
from .norms import fuse_layernorm, fuse_rmsnorm
from .quant import decompose_quant, quantized_weights
from .rewrite import ELEMENTWISE, VIEW_OPS
from .share import share_constants

__all__ = ["fuse", "PASSES", "ELEMENTWISE", "VIEW_OPS"]

PASSES = [lower_conv, quantized_weights, decompose_quant, canonicalize, split_large_weights, fuse_layernorm, fuse_rmsnorm,
          fuse_elementwise, fuse_attention,
          fold_output_transpose, fuse_epilogue, resolve_views, share_constants]


def fuse(g: Graph, dump=None) -> Graph:
    """Stage entry point. dump(name, text): called with the graph after each pass (WEBJIT_DUMP)."""
    for i, p in enumerate(PASSES):
        p(g)
        if dump is not None:
            dump(f"graph.fused.{i:02d}_{p.__name__}.txt", g.dump)
    return g
