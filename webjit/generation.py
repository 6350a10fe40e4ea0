"""Decoders for text generation: a prefill plan per prompt bucket and a decode plan per past bucket.

A decoder exported with its past (Optimum's `text-generation-with-past`: inputs `past_key_values.N.key/value`,
outputs `present.N.key/value`) computes `present = Concat(past, new rows)`. For generation the graph is changed
so that each present output is only the new rows; the runtime keeps the cache itself (in GPU buffers or in the
wasm memory) and writes the new rows into it after each step, so nothing of the cache is read back or uploaded.

The plans are compiled for a few *classes* of (sequence length, past length):
- prefill: the prompt padded to a bucket, over a past of one masked row;
- decode: one token over a past padded to a bucket; the rows between the real past and the bucket are masked by
  the attention mask, so a step at past 40 pays for 64 rows, not for the whole context.

    roles = decoder_roles(graph)          # which input is the ids, the mask, the positions; the cache pairs
    for seq, past in classes(spec): ...   # prefill classes, then decode classes; the last is the largest decode
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import WebjitError
from .ir import Graph

IDS = ("input_ids",)
MASK = ("attention_mask",)
POSITIONS = ("position_ids",)
LOGITS = "logits"
PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "present."
FIRST_BUCKET = 16  # the smallest prompt and past bucket; buckets double from here up to the context


@dataclass
class CachePair:
    past: str      # the input that holds the past rows, [batch, heads, past, head_dim]
    present: str   # the output that, after split_cache, holds only the new rows, [batch, heads, seq, head_dim]
    axis: int      # the sequence axis (2)


@dataclass
class Roles:
    ids: str
    mask: str | None
    positions: str | None
    logits: str
    cache: list[CachePair] = field(default_factory=list)
    seq_dim: str = "sequence_length"
    past_dim: str = "past_sequence_length"


@dataclass(frozen=True)
class Spec:
    """The context (the most positions a generation holds: prompt plus new tokens) and the buckets."""
    context: int
    prompt_buckets: tuple[int, ...] = ()
    past_buckets: tuple[int, ...] = ()

    @staticmethod
    def of(context: int, prompt_buckets=None, past_buckets=None) -> "Spec":
        if context < 3:
            raise WebjitError(f"--generate {context}: the context must hold at least 3 positions")
        top = context - 1  # a prompt of `top` tokens over one masked row; a past of `top` rows plus one token
        # a prompt bucket holds at least 2 tokens (a 1-token prompt runs padded in the smallest): a class of one
        # token over a one-row past is a decode class
        return Spec(context, _buckets(prompt_buckets, top, "prompt", 2), _buckets(past_buckets, top, "past", 1))


def _buckets(given, top: int, what: str, least: int) -> tuple[int, ...]:
    if given is None:
        sizes, b = [], FIRST_BUCKET
        while b < top:
            sizes.append(b)
            b *= 2
    else:
        sizes = sorted({int(s) for s in given})
        if sizes and (sizes[0] < least or sizes[-1] > top):
            raise WebjitError(f"{what} buckets {sizes}: sizes must lie between {least} and {top} (the context minus one)")
    return tuple(sorted(set(sizes) | {top}))


def classes(spec: Spec) -> list[tuple[int, int]]:
    """(sequence length, past length) of every plan: prefill ones, then decode ones, the largest decode last."""
    return [(s, 1) for s in spec.prompt_buckets] + [(1, p) for p in spec.past_buckets]


def decoder_roles(g: Graph) -> Roles:
    """Find the ids, mask, positions and logits, and pair each past input with its present output (the
    Concat that appends the new rows to the past)."""
    names = set(g.inputs)
    ids = next((n for n in IDS if n in names), None)
    if ids is None or LOGITS not in g.outputs:
        raise WebjitError("--generate needs a decoder with inputs 'input_ids' and outputs 'logits' "
                          f"(the model has inputs {', '.join(g.inputs)})")
    pasts = [n for n in g.inputs if n.startswith(PAST_PREFIX)]
    if not pasts:
        raise WebjitError("--generate needs a decoder exported with its past (inputs past_key_values.N.key/value, "
                          "as optimum-cli's text-generation-with-past writes)")
    if any(".encoder." in n for n in pasts):
        raise WebjitError("--generate: this is an encoder-decoder model's decoder_with_past_model.onnx, which has no "
                          "self-attention mask for a padded past; build its decoder_model.onnx with --generate")
    producers = g.producers()
    by_past: dict[str, CachePair] = {}
    for out in g.outputs:
        n = producers.get(out)
        if n is None or n.op != "Concat" or len(n.inputs) != 2 or n.inputs[0] not in pasts:
            continue
        rank = len(g.values[n.inputs[0]].shape or ())
        axis = n.attrs.get("axis", 0) % max(rank, 1)
        if rank == 4 and axis == 2:
            by_past[n.inputs[0]] = CachePair(n.inputs[0], out, axis)
    missing = [p for p in pasts if p not in by_past]
    if missing:
        raise WebjitError(f"--generate: input '{missing[0]}' is not appended to by a Concat along axis 2 into an "
                          "output; webjit generates with decoders whose present outputs are Concat(past, new)")
    other = [n for n in g.inputs if n not in {ids, *MASK, *POSITIONS, *pasts}]
    if other:
        raise WebjitError(f"--generate: input '{other[0]}' is neither the ids, the attention mask, the positions "
                          "nor a past; webjit generates with decoder-only models")
    mask = next((n for n in MASK if n in names), None)
    if mask is None:
        raise WebjitError("--generate needs an 'attention_mask' input: it masks the padded rows of the past")
    seq_dim, past_dim = g.values[ids].shape[-1], g.values[pasts[0]].shape[2]
    return Roles(ids, mask, next((n for n in POSITIONS if n in names), None), LOGITS,
                 [by_past[p] for p in pasts],
                 seq_dim if isinstance(seq_dim, str) else "sequence_length",
                 past_dim if isinstance(past_dim, str) else "past_sequence_length")


def split_cache(g: Graph, roles: Roles) -> None:
    """Make each present output the new rows only: the Concat keeps feeding attention under a new name, and the
    output takes over the name of its second input."""
    producers = g.producers()
    for pair in roles.cache:
        cat = producers[pair.present]
        new = cat.inputs[1]
        inner = g.fresh(pair.present + "/with_past")
        g.values[inner] = g.values.pop(pair.present)
        g.values[inner].name = inner
        for n in g.nodes:
            n.inputs = [inner if i == pair.present else i for i in n.inputs]
        cat.outputs = [inner if o == pair.present else o for o in cat.outputs]
        # the new rows take the output's name; every reader of them follows
        v = g.values.pop(new)
        v.name = pair.present
        g.values[pair.present] = v
        for n in g.nodes:
            n.inputs = [pair.present if i == new else i for i in n.inputs]
            n.outputs = [pair.present if o == new else o for o in n.outputs]


def sample_feeds(g: Graph, roles: Roles, seq: int, past: int) -> dict:
    """Inputs of a class's shapes (the values only fix shapes: no input of a decoder decides one)."""
    import numpy as np
    feeds = {}
    for name in g.inputs:
        v = g.values[name]
        if name == roles.ids:
            feeds[name] = np.ones((1, seq), v.dtype)
        elif name == roles.mask:
            feeds[name] = np.ones((1, past + seq), v.dtype)
        elif name == roles.positions:
            feeds[name] = np.arange(past, past + seq, dtype=v.dtype).reshape(1, seq)
        else:
            shape = [1 if i == 0 else past if i == 2 else d for i, d in enumerate(v.shape)]
            if not all(isinstance(d, int) for d in shape):
                raise WebjitError(f"--generate: input '{name}' has shape {list(v.shape)}; the heads and head size "
                                  "must be fixed")
            feeds[name] = np.zeros(shape, v.dtype)
    return feeds


def manifest_section(spec: Spec, roles: Roles, plans) -> dict:
    """The manifest's `generate` section (web/MANIFEST.md)."""
    top = plans[-1]
    return {
        "context": spec.context,
        "ids": roles.ids, "mask": roles.mask, "positions": roles.positions, "logits": roles.logits,
        "vocab": int(top.shapes[roles.logits][-1]) if roles.logits in top.shapes else None,
        "cache": [{"past": c.past, "present": c.present, "axis": c.axis,
                   "shape": [1, *list(top.shapes[c.past][1:2]), spec.context, *list(top.shapes[c.past][3:])]}
                  for c in roles.cache],
        "classes": [{"seq": s, "past": p} for s, p in classes(spec)],
    }


# -- encoder-decoder models ----------------------------------------------------------------------------------------
# Optimum's text2text-generation export of T5 and BART writes encoder_model.onnx, decoder_model.onnx and
# decoder_with_past_model.onnx. The decoder with its past has no self-attention mask and takes its positions from
# the past's length, so a past padded to a bucket cannot be masked; webjit generates with decoder_model.onnx
# instead: the encoder runs once, and each step runs the decoder over the tokens so far, padded to a bucket (the
# decoder is causal, so padding after them changes nothing before them). A step costs its bucket's length.
ENCODER_STATES, ENCODER_MASK = "encoder_hidden_states", "encoder_attention_mask"
ENCODER_FOLDER = "encoder"  # the encoder's bundle, inside the decoder's


@dataclass
class Seq2SeqRoles:
    ids: str
    states: str
    mask: str | None
    logits: str
    seq_dim: str
    enc_dim: str
    enc_ids: str = "input_ids"
    enc_mask: str | None = "attention_mask"
    enc_output: str = "last_hidden_state"


@dataclass(frozen=True)
class Seq2SeqSpec:
    """The most decoder positions (the start token and the new tokens), the longest prompt, and the buckets of
    both; `start` is the decoder's first token (T5: the pad token, BART: </s>)."""
    context: int
    encoder_length: int
    start: int
    decoder_buckets: tuple[int, ...] = ()
    encoder_buckets: tuple[int, ...] = ()

    @staticmethod
    def of(context: int, encoder_length: int, start: int, decoder_buckets=None, encoder_buckets=None) -> "Seq2SeqSpec":
        if context < 2:
            raise WebjitError(f"--generate {context}: the decoder must hold at least 2 positions")
        if encoder_length < 1:
            raise WebjitError(f"--encoder-length {encoder_length}: the prompt must hold at least 1 token")
        return Seq2SeqSpec(context, encoder_length, start, _buckets(decoder_buckets, context, "decoder", 1),
                           _buckets(encoder_buckets, encoder_length, "encoder", 1))


def is_seq2seq_decoder(g: Graph) -> bool:
    return ENCODER_STATES in g.inputs


def seq2seq_roles(decoder: Graph, encoder: Graph) -> Seq2SeqRoles:
    """The decoder's ids, encoder states, encoder mask and logits, and the encoder's ids, mask and output."""
    names = set(decoder.inputs)
    if any(n.startswith(PAST_PREFIX) for n in names):
        raise WebjitError("--generate takes an encoder-decoder model's decoder_model.onnx, not "
                          "decoder_with_past_model.onnx: that one has no self-attention mask for a padded past")
    ids = next((n for n in IDS if n in names), None)
    if ids is None or LOGITS not in decoder.outputs:
        raise WebjitError("--generate needs a decoder with inputs 'input_ids' and 'encoder_hidden_states' and "
                          f"output 'logits' (the model has inputs {', '.join(decoder.inputs)})")
    other = [n for n in decoder.inputs if n not in {ids, ENCODER_STATES, ENCODER_MASK}]
    if other:
        raise WebjitError(f"--generate: decoder input '{other[0]}' is neither the ids, the encoder states nor "
                          "the encoder's attention mask")
    enc = Seq2SeqRoles(ids, ENCODER_STATES, ENCODER_MASK if ENCODER_MASK in names else None, LOGITS, "", "")
    if enc.enc_ids not in encoder.inputs or enc.enc_output not in encoder.outputs:
        raise WebjitError(f"--encoder: expected an encoder with input '{enc.enc_ids}' and output "
                          f"'{enc.enc_output}' (it has inputs {', '.join(encoder.inputs)})")
    if enc.enc_mask not in encoder.inputs:
        enc.enc_mask = None
    seq_dim = decoder.values[ids].shape[-1]
    enc_dim = encoder.values[enc.enc_ids].shape[-1]
    if not isinstance(seq_dim, str) or not isinstance(enc_dim, str):
        raise WebjitError("--generate: the decoder's and the encoder's sequence lengths must be symbolic dims")
    enc.seq_dim, enc.enc_dim = seq_dim, enc_dim
    return enc


def seq2seq_feeds(decoder: Graph, encoder: Graph, roles: Seq2SeqRoles, spec: Seq2SeqSpec) -> tuple[dict, dict]:
    """Sample inputs of the largest shapes: the decoder's (context tokens, encoder_length states) and the encoder's."""
    import numpy as np
    width = decoder.values[roles.states].shape[-1]
    if not isinstance(width, int):
        raise WebjitError(f"--generate: '{roles.states}' must have a fixed hidden size")
    dt = {n: np.dtype(decoder.values[n].dtype) for n in decoder.inputs}
    dec = {roles.ids: np.ones((1, spec.context), dt[roles.ids]),
           roles.states: np.zeros((1, spec.encoder_length, width), dt[roles.states])}
    if roles.mask:
        dec[roles.mask] = np.ones((1, spec.encoder_length), dt[roles.mask])
    edt = {n: np.dtype(encoder.values[n].dtype) for n in encoder.inputs}
    enc = {roles.enc_ids: np.ones((1, spec.encoder_length), edt[roles.enc_ids])}
    if roles.enc_mask:
        enc[roles.enc_mask] = np.ones((1, spec.encoder_length), edt[roles.enc_mask])
    return dec, enc


def seq2seq_section(spec: Seq2SeqSpec, roles: Seq2SeqRoles, vocab: int) -> dict:
    """The manifest's `generate` section of an encoder-decoder model (web/MANIFEST.md)."""
    return {
        "kind": "seq2seq", "context": spec.context, "start": spec.start,
        "ids": roles.ids, "states": roles.states, "mask": roles.mask, "logits": roles.logits, "vocab": vocab,
        "encoder": {"folder": ENCODER_FOLDER + "/", "ids": roles.enc_ids, "mask": roles.enc_mask,
                    "output": roles.enc_output, "length": spec.encoder_length},
    }


def decoder_start(model) -> int | None:
    """decoder_start_token_id from the config.json of the model's hub folder (next to onnx/, or beside it)."""
    import json
    from pathlib import Path
    here = Path(model).resolve().parent
    for folder in (here, here.parent):
        config = folder / "config.json"
        if config.is_file():
            try:
                value = json.loads(config.read_text()).get("decoder_start_token_id")
            except (OSError, ValueError):
                return None
            return value if isinstance(value, int) else None
    return None
