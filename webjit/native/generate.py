"""Greedy generation with the native runners, and onnxruntime's own greedy loop to check it against.

    gen = Generator("onnx/model.onnx", context=64, backend="wasm")
    ids = gen.greedy([5, 17, 3], max_new_tokens=32)
    assert ids == reference_greedy("onnx/model.onnx", [5, 17, 3], 32)

The generator keeps the cache as numpy arrays of the context's length and feeds each class its padded slice, so
it checks the compiled plans and the masking of padded rows; the browser runtime (web/generate.js) keeps the
cache on the device instead.
"""
from __future__ import annotations

import numpy as np

from .. import compile as compile_model
from ..errors import WebjitError
from ..generation import Spec, classes, decoder_roles, sample_feeds
from ..onnx_import import import_onnx


class Generator:
    def __init__(self, model, context: int, backend: str = "wasm", prompt_buckets=None, past_buckets=None):
        g = import_onnx(model)
        self.roles = decoder_roles(g)
        self.spec = Spec.of(context, prompt_buckets, past_buckets)
        self.classes = classes(self.spec)
        self.plans = [compile_model(model, values=sample_feeds(g, self.roles, s, p), generation=True)
                      for s, p in self.classes]
        self.backend = backend
        self._runners: dict[int, object] = {}
        self.dtypes = {n: g.values[n].dtype for n in g.inputs}

    def _runner(self, i: int):
        if i not in self._runners:
            if self.backend == "wasm":
                from .wasm_runner import WasmRunner
                self._runners[i] = WasmRunner(self.plans[i])
            else:
                from .wgpu_runner import WgpuRunner
                self._runners[i] = WgpuRunner(self.plans[i])
        return self._runners[i]

    def pick(self, seq: int, past: int) -> int:
        """The class that runs `seq` new tokens over `past` cached rows: a prefill class for the prompt (past 0),
        else the decode class with the smallest past bucket that holds the past."""
        if past == 0:
            fits = [i for i, s in enumerate(self.spec.prompt_buckets) if s >= seq]
            if not fits:
                raise WebjitError(f"a prompt of {seq} tokens is longer than this decoder takes "
                                  f"({self.spec.prompt_buckets[-1]} with a context of {self.spec.context})")
            return fits[0]
        if seq != 1:
            raise WebjitError("after the prompt, tokens go one at a time")
        first = len(self.spec.prompt_buckets)
        fits = [first + i for i, p in enumerate(self.spec.past_buckets) if p >= past]
        if not fits:
            raise WebjitError(f"the context of {self.spec.context} positions is full")
        return fits[0]

    def greedy(self, prompt: list[int], max_new_tokens: int, eos: int | None = None) -> list[int]:
        """The prompt's continuation, taking the most likely token at each step (the new ids only)."""
        return _loop(self.step, self.new_cache(), prompt, max_new_tokens, eos)[0]

    def forced(self, prompt: list[int], continuation: list[int]) -> list[np.ndarray]:
        """The logits after the prompt and after each token of `continuation`, fed one at a time."""
        return _loop(self.step, self.new_cache(), prompt, len(continuation) + 1, None, continuation)[1]

    def new_cache(self) -> dict:
        return {c.past: np.zeros((1, *self._shape(c.past)[1:2], self.spec.context, *self._shape(c.past)[3:]),
                                 np.float32) for c in self.roles.cache}

    def _shape(self, name: str) -> tuple:
        return self.plans[-1].shapes[name]

    def step(self, tokens: list[int], past: int, cache: dict) -> np.ndarray:
        """Run `tokens` over `past` cached rows; append their rows to `cache`; the last token's logits."""
        i = self.pick(len(tokens), past)
        seq, bucket = self.classes[i]
        n = len(tokens)
        r = self.roles
        ids = np.zeros((1, seq), self.dtypes[r.ids])
        ids[0, :n] = tokens
        mask = np.zeros((1, bucket + seq), self.dtypes[r.mask])
        mask[0, :past] = 1
        mask[0, bucket:bucket + n] = 1
        feeds = {r.ids: ids, r.mask: mask}
        if r.positions:
            feeds[r.positions] = np.arange(past, past + seq, dtype=self.dtypes[r.positions]).reshape(1, seq)
        for c in r.cache:
            feeds[c.past] = np.ascontiguousarray(cache[c.past][:, :, :bucket])
        got = self._runner(i).run(feeds)
        for c in r.cache:
            cache[c.past][:, :, past:past + n] = got[c.present][:, :, :n]
        return got[r.logits][0, n - 1]


def _loop(step, cache, prompt, steps, eos, forced=None):
    """(new ids, logits per step): greedy, or feeding `forced` tokens after the prompt."""
    out, logits, tokens, past = [], [], list(prompt), 0
    while len(out) < steps:
        row = step(tokens, past, cache)
        logits.append(row)
        past += len(tokens)
        tok = int(np.argmax(row)) if forced is None or len(out) >= len(forced) else forced[len(out)]
        out.append(tok)
        if tok == eos:
            break
        tokens = [tok]
    return out, logits


def reference_greedy(model, prompt: list[int], max_new_tokens: int, eos: int | None = None) -> list[int]:
    """onnxruntime's greedy loop on the unchanged model: the past grows from empty, as Optimum runs it."""
    return _loop(_Reference(model).step, None, prompt, max_new_tokens, eos)[0]


def reference_forced(model, prompt: list[int], continuation: list[int]) -> list[np.ndarray]:
    return _loop(_Reference(model).step, None, prompt, len(continuation) + 1, None, continuation)[1]


class _Reference:
    def __init__(self, model):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        g = import_onnx(model)
        self.roles = decoder_roles(g)
        self.dt = {n: np.dtype(g.values[n].dtype) for n in g.inputs}
        self.past = {c.past: np.zeros([1 if a == 0 else 0 if a == 2 else d
                                       for a, d in enumerate(g.values[c.past].shape)], self.dt[c.past])
                     for c in self.roles.cache}

    def step(self, tokens, length, _cache):
        r, dt, n = self.roles, self.dt, len(tokens)
        feeds = {r.ids: np.array([tokens], dt[r.ids]), r.mask: np.ones((1, length + n), dt[r.mask]), **self.past}
        if r.positions:
            feeds[r.positions] = np.arange(length, length + n, dtype=dt[r.positions]).reshape(1, n)
        got = dict(zip([o.name for o in self.sess.get_outputs()], self.sess.run(None, feeds)))
        self.past = {c.past: got[c.present] for c in r.cache}
        return got[r.logits][0, -1]


class Seq2SeqGenerator:
    """Greedy generation with an encoder-decoder model (generation.py): the encoder once over the prompt padded to
    its bucket, then per step the decoder over the tokens so far padded to its bucket."""

    def __init__(self, encoder, decoder, spec, backend: str = "wasm"):
        from ..generation import seq2seq_feeds, seq2seq_roles
        from ..shape_classes import input_axes, resize
        dec_g, enc_g = import_onnx(decoder), import_onnx(encoder)
        self.roles = r = seq2seq_roles(dec_g, enc_g)
        self.spec = spec
        dec_feeds, enc_feeds = seq2seq_feeds(dec_g, enc_g, r, spec)
        dec_axes, enc_axes = input_axes(dec_g), input_axes(enc_g)
        self.encoders = {n: compile_model(encoder, values=resize(enc_feeds, enc_g.inputs, enc_axes, {r.enc_dim: n}))
                         for n in spec.encoder_buckets}
        self.decoders = {n: compile_model(decoder, values=resize(dec_feeds, dec_g.inputs, dec_axes, {r.seq_dim: n}),
                                          outputs=[r.logits])
                         for n in spec.decoder_buckets}
        self.runner = _runner_class(backend)
        self._runners: dict = {}
        self.dtypes = {**{n: enc_g.values[n].dtype for n in enc_g.inputs}, **{n: dec_g.values[n].dtype for n in dec_g.inputs}}

    def _run(self, plans, n, feeds):
        key = (id(plans), n)
        if key not in self._runners:
            self._runners[key] = self.runner(plans[n])
        return self._runners[key].run(feeds)

    def greedy(self, prompt: list[int], max_new_tokens: int, eos: int | None = None) -> list[int]:
        return self._loop(prompt, max_new_tokens, eos)[0]

    def forced(self, prompt: list[int], continuation: list[int]) -> list[np.ndarray]:
        """The logits after the start token and after each token of `continuation`."""
        return self._loop(prompt, len(continuation) + 1, None, continuation)[1]

    def _loop(self, prompt, max_new_tokens, eos, forced=None):
        r, spec = self.roles, self.spec
        fits = [b for b in spec.encoder_buckets if b >= len(prompt)]
        if not fits:
            raise WebjitError(f"a prompt of {len(prompt)} tokens is longer than this encoder takes ({spec.encoder_length})")
        if max_new_tokens > spec.context:
            raise WebjitError(f"{max_new_tokens} new tokens do not fit the decoder's {spec.context} positions")
        e, n = fits[0], len(prompt)
        ids = np.zeros((1, e), self.dtypes[r.enc_ids])
        ids[0, :n] = prompt
        mask = np.zeros((1, spec.encoder_length), np.int64)
        mask[0, :n] = 1
        feeds = {r.enc_ids: ids}
        if r.enc_mask:
            feeds[r.enc_mask] = mask[:, :e].astype(self.dtypes[r.enc_mask])
        states = self._run(self.encoders, e, feeds)[r.enc_output]
        full = np.zeros((1, spec.encoder_length, states.shape[-1]), np.float32)
        full[0, :n] = states[0, :n]
        tokens, out, rows = [spec.start], [], []
        while len(out) < max_new_tokens:
            t = len(tokens)
            b = next(b for b in spec.decoder_buckets if b >= t)
            dec_ids = np.zeros((1, b), self.dtypes[r.ids])
            dec_ids[0, :t] = tokens
            feeds = {r.ids: dec_ids, r.states: full}
            if r.mask:
                feeds[r.mask] = mask.astype(self.dtypes[r.mask])
            rows.append(self._run(self.decoders, b, feeds)[r.logits][0, t - 1])
            tok = int(np.argmax(rows[-1])) if forced is None or len(out) >= len(forced) else forced[len(out)]
            out.append(tok)
            tokens.append(tok)
            if tok == eos:
                break
        return out, rows


def _runner_class(backend: str):
    if backend == "wasm":
        from .wasm_runner import WasmRunner
        return WasmRunner
    from .wgpu_runner import WgpuRunner
    return WgpuRunner


def reference_seq2seq_greedy(encoder, decoder, decoder_with_past, prompt: list[int], max_new_tokens: int,
                             start: int, eos: int | None = None) -> list[int]:
    """onnxruntime's greedy loop as Optimum runs it: the encoder once on the unpadded prompt, decoder_model for
    the first token, then decoder_with_past_model with the cache it returns."""
    return _seq2seq_reference(encoder, decoder, decoder_with_past, prompt, max_new_tokens, start, eos)[0]


def reference_seq2seq_forced(encoder, decoder, decoder_with_past, prompt, continuation, start) -> list[np.ndarray]:
    return _seq2seq_reference(encoder, decoder, decoder_with_past, prompt, len(continuation) + 1, start, None,
                              continuation)[1]


def _seq2seq_reference(encoder, decoder, decoder_with_past, prompt, max_new_tokens, start, eos, forced=None):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = {k: ort.InferenceSession(str(m), opts, providers=["CPUExecutionProvider"])
            for k, m in (("enc", encoder), ("dec", decoder), ("past", decoder_with_past))}
    names = {k: [i.name for i in s.get_inputs()] for k, s in sess.items()}
    ids = np.array([prompt], np.int64)
    mask = np.ones_like(ids)
    enc_feeds = {"input_ids": ids, **({"attention_mask": mask} if "attention_mask" in names["enc"] else {})}
    states = sess["enc"].run(None, enc_feeds)[0]
    out, tok, cache, rows = [], start, {}, []
    while len(out) < max_new_tokens:
        feeds = {"input_ids": np.array([[tok]], np.int64)}
        if "encoder_attention_mask" in names["dec"]:
            feeds["encoder_attention_mask"] = mask
        key = "past" if cache else "dec"
        if key == "dec":
            feeds["encoder_hidden_states"] = states
        else:
            feeds.update({n: cache[n] for n in names["past"] if n.startswith("past_key_values.")})
        got = dict(zip([o.name for o in sess[key].get_outputs()], sess[key].run(None, feeds)))
        for name, value in got.items():
            if name.startswith("present."):
                past = "past_key_values." + name[len("present."):]
                if key == "dec" or ".decoder." in name:
                    cache[past] = value
        rows.append(got["logits"][0, -1])
        tok = int(np.argmax(rows[-1])) if forced is None or len(out) >= len(forced) else forced[len(out)]
        out.append(tok)
        if tok == eos:
            break
    return out, rows
