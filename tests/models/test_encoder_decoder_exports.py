"""Small random encoder/decoder models, exported by torch.onnx (TorchScript, opset 14) as hub exports are, compile
and match onnxruntime on both backends (max abs error <= 1e-4): T5 (relative position buckets; decoder with past),
BART (decoder with past), DeBERTa-v2 (relative attention with position buckets: an If on a shape, Tile, kernels on
constant embeddings), MPNet, and sentence-transformers' mean pooling with L2 normalisation (ReduceL2, Clip)."""
from __future__ import annotations

import numpy as np
import pytest

from webjit.validate import validate

pytestmark = [pytest.mark.native, pytest.mark.models]
torch = pytest.importorskip("torch")
T = pytest.importorskip("transformers")

B, S, PAST = 1, 7, 5
SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)


class Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, mask):
        m = self.model.get_encoder() if self.model.config.is_encoder_decoder else self.model
        return m(input_ids=ids, attention_mask=mask).last_hidden_state


class DecoderWithPast(torch.nn.Module):
    """Logits of one new token given the encoder's states and the self- and cross-attention caches, flattened."""

    def __init__(self, model, layers):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, ids, hidden, mask, *kv):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache
        own, cross = DynamicCache(), DynamicCache()
        for i in range(self.layers):
            own.update(kv[4 * i], kv[4 * i + 1], i)
            cross.update(kv[4 * i + 2], kv[4 * i + 3], i)
        return self.model(decoder_input_ids=ids, encoder_outputs=(hidden,), attention_mask=mask,
                          past_key_values=EncoderDecoderCache(own, cross), use_cache=True).logits


class SentenceEmbedding(torch.nn.Module):
    """Mean pooling over the mask, then L2 normalisation, as sentence-transformers models end."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, mask):
        h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask.unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * w).sum(1) / torch.clamp(w.sum(1), min=1e-9), p=2, dim=1)


def _tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 90, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.int64)
    mask[:, -2:] = 0
    return ids, mask


def _seq2seq(name):
    if name == "t5":
        cfg = T.T5Config(vocab_size=99, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                         num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                         decoder_start_token_id=0)
        return T.T5ForConditionalGeneration(cfg), 2, 4, 8
    cfg = T.BartConfig(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                       decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64)
    return T.BartForConditionalGeneration(cfg), 2, 4, 8


def _case(name):
    """(module, positional example inputs) for one case."""
    torch.manual_seed(0)
    ids, mask = _tokens()
    if name in ("t5_encoder", "bart_encoder"):
        return Encoder(_seq2seq(name.split("_")[0])[0]), (ids, mask)
    if name in ("t5_decoder_with_past", "bart_decoder_with_past"):
        model, layers, heads, head_dim = _seq2seq(name.split("_")[0])
        kv = []
        for _ in range(layers):
            kv += [torch.randn(B, heads, PAST, head_dim), torch.randn(B, heads, PAST, head_dim),
                   torch.randn(B, heads, S, head_dim), torch.randn(B, heads, S, head_dim)]
        return DecoderWithPast(model, layers), (ids[:, :1], torch.randn(B, S, 32), mask, *kv)
    if name == "deberta_v2":
        cfg = T.DebertaV2Config(**SMALL, relative_attention=True, position_buckets=16, max_relative_positions=32,
                                pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", share_att_key=True)
        return Encoder(T.DebertaV2Model(cfg)), (ids, mask)
    if name == "mpnet":
        return Encoder(T.MPNetModel(T.MPNetConfig(**SMALL))), (ids, mask)
    return SentenceEmbedding(T.BertModel(T.BertConfig(**SMALL))), (ids, mask)


CASES = ["t5_encoder", "t5_decoder_with_past", "bart_encoder", "bart_decoder_with_past", "deberta_v2", "mpnet",
         "sentence_embedding"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model path, feeds), each exported once for both backends."""
    out, tmp = {}, tmp_path_factory.mktemp("exports")

    def get(name):
        if name not in out:
            module, args = _case(name)
            path = tmp / f"{name}.onnx"
            names = [f"in{i}" for i in range(len(args))]
            with torch.no_grad():
                torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=14,
                                  input_names=names, do_constant_folding=False)
            out[name] = path, {n: a.numpy() for n, a in zip(names, args)}
        return out[name]
    return get


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
@pytest.mark.parametrize("name", CASES)
def test_export_matches_onnxruntime(name, backend, exported):
    path, feeds = exported(name)
    import onnx
    used = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    report, _ = validate(path, {n: a for n, a in feeds.items() if n in used}, backend=backend)
    assert report.errors and report.ok, report.errors
