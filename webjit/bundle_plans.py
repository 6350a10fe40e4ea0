"""The plans a bundle holds, compiled by `stages.compile`: one per shape class, smallest first (the last, largest
one is the manifest's top level), with the manifest's `dynamic` section that lists the classes and, for text
generation, its `generate` section. Called by `bundle.build_files`.

- `compile_plans`: one plan, or with length buckets one per class (shape_classes.py), after proving with
  onnxruntime that padding leaves the outputs unchanged;
- `compile_generation`: a decoder with a past: prefill and decode plans (generation.py);
- `compile_seq2seq`: an encoder-decoder model's decoder, computing only the logits, and its encoder's bundle.
"""
from __future__ import annotations

import importlib.util

from .errors import WebjitError
from .plan import Plan
from .progress import Progress
from .stages import compile as compile_model


def compile_plans(model, shapes, values, buckets, outputs=None) -> tuple[list[Plan], dict | None]:
    """The plan of every shape class, smallest first, and the manifest's `dynamic` section (None without
    buckets), with the classes' dims under "sizes" for now. outputs: compute only these."""
    if not buckets:
        return [compile_model(model, shapes, values, outputs=outputs)], None
    from .onnx_import import import_onnx
    from .shape_classes import bucketed_dims, input_axes
    from .validate import generate_inputs
    if values is None:
        values = generate_inputs(model, shapes)
    g = import_onnx(model)
    axes = input_axes(g)
    dims = bucketed_dims(g, values, buckets)
    from .padding import masked_quantization
    smallest = min(min(sizes) for sizes in dims.values())
    with masked_quantization(model, g.inputs, smallest) as rewritten:
        return _compile_classes(rewritten, g, values, axes, dims, outputs)


def _compile_classes(model, g, values, axes, dims, outputs) -> tuple[list[Plan], dict]:
    from .shape_classes import PAD_VALUE, check_padding, classes, output_axes, resize
    sizes = classes(dims)
    plans = []
    bar = Progress("shape classes", len(sizes))
    for i, c in enumerate(sizes):
        plans.append(compile_model(model, None, resize(values, g.inputs, axes, c), outputs=outputs))
        bar(i + 1, note=" ".join(f"{s}={v}" for s, v in c.items()))
    top = plans[-1]
    shapes_of = [{n: tuple(p.consts[n].shape) if n in p.consts else tuple(p.shapes[n]) for n in p.outputs}
                 for p in plans]
    out_axes = dict(zip(top.outputs, output_axes(top.outputs, shapes_of, sizes)))
    if importlib.util.find_spec("onnxruntime") is None:
        raise WebjitError("--buckets checks with onnxruntime that padding leaves the outputs unchanged; "
                          "install it (pip install 'webjit[validate]')")
    check_padding(model, values, g.inputs, axes, dims, out_axes)
    symbols = list(dims)
    by_input = dict(zip(g.inputs, axes.inputs))
    index = {s: i for i, s in enumerate(symbols)}
    return plans, {
        "dims": [{"name": s, "max": dims[s][-1], "buckets": dims[s]} for s in symbols],
        "inputs": [[index.get(s) for s in by_input[n]] for n in top.inputs],
        "outputs": [[index.get(s) for s in out_axes[n]] for n in top.outputs],
        "pad": [PAD_VALUE for _ in top.inputs],
        "sizes": [[c[s] for s in symbols] for c in sizes],
    }


def compile_generation(model, spec) -> tuple[list[Plan], dict, dict]:
    """The prefill and decode plans of a decoder (generation.py), the `dynamic` section that lists them as shape
    classes (dims: sequence and past length), and the `generate` section."""
    from .generation import classes, decoder_roles, manifest_section, sample_feeds
    from .onnx_import import import_onnx
    g = import_onnx(model)
    roles = decoder_roles(g)
    sizes = classes(spec)
    plans = []
    bar = Progress("generation plans", len(sizes))
    for i, (seq, past) in enumerate(sizes):
        plans.append(compile_model(model, None, sample_feeds(g, roles, seq, past), generation=True))
        bar(i + 1, note=f"{'prefill' if past == 1 and i < len(spec.prompt_buckets) else 'decode'} "
                        f"{roles.seq_dim}={seq} {roles.past_dim}={past}")
    top = plans[-1]
    pasts = {c.past for c in roles.cache}
    dynamic = {
        "dims": [{"name": roles.seq_dim, "max": spec.prompt_buckets[-1], "buckets": list(spec.prompt_buckets)},
                 {"name": roles.past_dim, "max": spec.past_buckets[-1], "buckets": list(spec.past_buckets)}],
        # only the past follows a dim the way `dynamic` means it (padded at its end); the runtime's generate()
        # fills the other inputs itself, and run() takes the top level's shapes
        "inputs": [[1 if n in pasts and a == 2 else None for a in range(len(top.shapes[n]))] for n in top.inputs],
        "outputs": [[None] * len(top.consts[n].shape if n in top.consts else top.shapes[n]) for n in top.outputs],
        "pad": [0 for _ in top.inputs],
        "sizes": [[s, p] for s, p in sizes],
    }
    return plans, dynamic, manifest_section(spec, roles, plans)


def compile_seq2seq(model, encoder, spec, encoder_bundle) -> tuple[list[Plan], dict | None, dict, dict]:
    """An encoder-decoder model for generation (generation.py): the decoder's plans per decoder bucket, computing
    only the logits, with their `dynamic` and `generate` sections, and the encoder's bundle files, bucketed by
    prompt length. encoder_bundle(encoder, values=, buckets=) builds them (bundle.build_files, which nests them
    under encoder/)."""
    from .generation import seq2seq_feeds, seq2seq_roles, seq2seq_section
    from .onnx_import import import_onnx
    if encoder is None:
        raise WebjitError("--generate on an encoder-decoder model's decoder needs its encoder (--encoder "
                          "encoder_model.onnx, found by itself next to the decoder in a hub folder)")
    dec_g, enc_g = import_onnx(model), import_onnx(encoder)
    roles = seq2seq_roles(dec_g, enc_g)
    dec_feeds, enc_feeds = seq2seq_feeds(dec_g, enc_g, roles, spec)
    sizes = lambda b: ",".join(str(n) for n in b)  # noqa: E731
    enc_buckets = [f"{roles.enc_dim}={sizes(spec.encoder_buckets)}"] if len(spec.encoder_buckets) > 1 else None
    enc_files = encoder_bundle(encoder, values=enc_feeds, buckets=enc_buckets)
    dec_buckets = [f"{roles.seq_dim}={sizes(spec.decoder_buckets)}"] if len(spec.decoder_buckets) > 1 else None
    plans, dynamic = compile_plans(model, None, dec_feeds, dec_buckets, outputs=[roles.logits])
    vocab = int(plans[-1].shapes[roles.logits][-1])
    return plans, dynamic, seq2seq_section(spec, roles, vocab), enc_files
