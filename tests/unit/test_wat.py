"""webjit.wat assembles WebAssembly text in pure Python. Every expected binary comes from wasmtime.wat2wasm on the
same text; webjit.wat writes no custom sections, so those (wasmtime's "name" section) are dropped before comparing."""
from __future__ import annotations

import onnx
import pytest
import wasmtime

import webjit
from unit.test_bundle import tiny_model
from unit.test_golden_kernels import CASES
from webjit.render_wasm import layout, render_module, render_tunable_module
from webjit.space import ceil_div
from webjit.space_wasm import REGISTERS, retarget
from webjit.wat import LANES, MEMORY, OPS, PLAIN, assemble
from helpers import compile_model


def without_custom_sections(binary: bytes) -> bytes:
    out, i = bytearray(binary[:8]), 8
    while i < len(binary):
        start, sid, size, shift = i, binary[i], 0, 0
        i += 1
        while True:
            b = binary[i]
            i += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if sid != 0:
            out += binary[start:i + size]
        i += size
    return bytes(out)


def check(text: str):
    assert assemble(text) == without_custom_sections(wasmtime.wat2wasm(text))


# -- modules the renderers write -----------------------------------------------------------------------------------
def modules(plan):
    """What bundle_wasm writes (the tunable module, four forms) and what wasm_runner runs (one variant each)."""
    for simd in ("relaxed", "fixed"):
        p = retarget(plan, REGISTERS, simd == "relaxed")
        lay = layout(p)
        candidates = {k.name: list(k.space[:4]) for k in p.kernels}
        for shared in (False, True):
            yield f"{simd}-tunable-{'shared' if shared else 'unshared'}", render_tunable_module(
                p, candidates, lay, ceil_div(lay.size, 64) * 64, shared)
            yield f"{simd}-plain-{'shared' if shared else 'unshared'}", render_module(
                p, {k.name: k.space[-1] for k in p.kernels}, lay, shared)


def _plan(name, tmp_path):
    if name == "tiny":
        return compile_model(*tiny_model())
    path = tmp_path / f"{name}.onnx"
    onnx.save(CASES[name][0], path)
    return webjit.compile(path)


@pytest.mark.parametrize("name", ["tiny"] + sorted(CASES))
def test_rendered_modules_assemble_to_wasmtimes_bytes(name, tmp_path):
    forms = dict(modules(_plan(name, tmp_path)))
    assert len(forms) == 8 and any("memory.atomic.wait32" in t for t in forms.values())
    for form, text in forms.items():
        assert assemble(text) == without_custom_sections(wasmtime.wat2wasm(text)), form


# -- every instruction, and the edges of the text format -----------------------------------------------------------
def test_every_instruction_in_the_tables_encodes_as_wasmtime_does():
    body = [n for n in PLAIN]
    body += [f"{n} offset=7" for n in MEMORY if n not in LANES] + [f"{n} align=1" for n in MEMORY if n not in LANES]
    body += [f"{n} {LANES[n] - 1}" for n in LANES if n not in MEMORY]
    body += [f"{n} offset=3 {LANES[n] - 1}" for n in LANES if n in MEMORY] + [f"{n} 1" for n in LANES if n in MEMORY]
    assert len(OPS) > 450
    check("(module (memory 1) (func\n  " + "\n  ".join(body) + "))")


@pytest.mark.parametrize("text", [
    # labels, nesting, flat and folded blocks, br_table, block types
    """(module (func $f (param $x i32) (result i32) (local $y i32) (local i64 i64 v128) (local $z i32)
         (block $a (block $b (loop $l (br_table $a $b $l 0 (local.get $x)) (br_if $l (local.get $y)))))
         block $c (result i32) i32.const 1 br $c end $c
         (if $d (result i32) (local.get $x) (then (i32.const 2)) (else (br $d (i32.const 3))))
         i32.add
         loop (param i32) (result i32 i32) drop i32.const 0 i32.const 1 end drop
         if (result i64) i64.const 1 else i64.const 2 end drop
         (if (local.get $z) (then nop))
         (select (local.get $x) (local.get $y) (i32.const 1)) drop
         (select (result f32) (f32.const 1) (f32.const 2) (i32.const 0)) drop))""",
    # numeric literals
    """(module (func
         (i32.const -1) (i32.const 0x80000000) (i32.const 4_294_967_295) (i32.const -2147483648) (i32.const 0xFF)
         (i64.const -9223372036854775808) (i64.const 0xffff_ffff_ffff_ffff) (i64.const 123456789012)
         (f32.const 0x1.8p3) (f32.const -0x1p-149) (f32.const 0x1.fffffep127) (f32.const nan) (f32.const -nan)
         (f32.const nan:0x200000) (f32.const nan:0x1) (f32.const -inf) (f32.const inf) (f32.const -0)
         (f32.const 0.1) (f32.const 1e-45) (f32.const 3.4028234663852886e+38) (f32.const 1_000.5)
         (f32.const 0.10000000149011612) (f32.const 1.00000005960464477539062500001) (f32.const 16777217)
         (f32.const 1.000000059604644775390625) (f32.const 0x1.000001p0) (f32.const 0x1.0000010000001p0)
         (f32.const 0x10) (f32.const 1.e2) (f32.const 7.006492321624085e-46)
         (f64.const 0x1.fffffffffffffp1023) (f64.const nan:0xfffffffffffff) (f64.const -0.0) (f64.const 1e-320)
         (f64.const 2.718281828459045) (f64.const 0x1p-1074)))""",
    # v128.const in every shape, lanes, shuffles
    """(module (memory 1) (func
         (v128.const i8x16 -128 255 0 1 2 3 4 5 6 7 8 9 10 11 12 -1) (v128.const i16x8 -32768 65535 0 1 2 3 4 -1)
         (v128.const i32x4 0x7f800000 -1 0 4_294_967_295) (v128.const i64x2 -1 0x8000000000000000)
         (v128.const f32x4 nan -inf 0x1p-3 0.5) (v128.const f64x2 -nan:0x1 1e300)
         (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 31 (v128.const i32x4 0 0 0 0) (local.get 0))
         (v128.load32_lane 1 (i32.const 0) (v128.load32_splat offset=4 align=4 (i32.const 8)))
         (v128.store32_lane offset=16 3 (i32.const 0) (f32x4.replace_lane 2 (f32x4.splat (f32.const 1))
                                                                                (f32.const 2)))))""",
    # module fields: imports, types in and out of order, globals, tables, elem, data, exports, start, comments
    """(module $m
         (import "env" "memory" (memory 2 4 shared)) (import "env" "f" (func $imp (param i32) (result i32)))
         (import "env" "g" (global $g0 i32)) (import "\\65nv\\t\\"\\u{263a}" "t" (table $tt 1 funcref))
         ;; a comment (with parentheses
         (func $a (export "a") (param i32 i32) (call $b (local.get 0) (local.get 1)))
         (func $b (param $x i32) (param $y i32) (drop (call $imp (global.get $g0))) (global.set $g1 (i32.const 0)))
         (; a block (; nested ;) comment ;)
         (type $k (func (param i32) (param i32)))
         (type $k2 (func (param i32) (param i32)))
         (type (func (result v128)))
         (func $c (type $k2) (call_indirect $tab (type $k) (i32.const 1) (i32.const 2) (i32.const 0))
                              (call_indirect (param f64) (f64.const 1) (i32.const 0)))
         (func $d (type $k) (param i32 i32))
         (table $tab 3 10 funcref)
         (elem (i32.const 0) func $a $b $c) (elem (offset (i32.const 1)) $a)
         (global $g1 (mut i32) (i32.const -5)) (global $g2 (export "g2") f32 (f32.const 1.5))
         (data (i32.const 16) "hi\\00\\ff" "there") (data "passive")
         (export "mem" (memory 0)) (export "b" (func $b)) (export "tab" (table $tab))
         (start $c))""",
    # atomics and bulk memory, field list without (module)
    """(memory 1 1 shared)
       (func (param $p i32) (local $gen i32)
         (drop (i32.atomic.rmw.add offset=4 (i32.const 0) (i32.const 1)))
         (drop (i64.atomic.rmw16.cmpxchg_u (local.get $p) (i64.const 1) (i64.const 2)))
         (drop (memory.atomic.notify offset=4 (i32.const 0) (i32.const -1)))
         (drop (memory.atomic.wait32 offset=4 (i32.const 0) (local.get $gen) (i64.const -1)))
         (i32.atomic.store (i32.const 0) (i32.const 0)) atomic.fence
         (memory.copy (i32.const 0) (i32.const 1) (i32.const 2)) (memory.fill (i32.const 0) (i32.const 1) (i32.const 2))
         (drop (memory.grow (memory.size))))""",
])
def test_edge_snippets_assemble_to_wasmtimes_bytes(text):
    check(text)


@pytest.mark.parametrize("text, message", [
    ("(module (func (i32.frobnicate)))", "unknown or unsupported instruction 'i32.frobnicate'"),
    ("(module\n(func\n(br $nowhere)))", "line 3"),
    ("(module (func (local.get $x)))", "unknown local \\$x"),
    ("(module (func (call $g)))", "unknown func \\$g"),
    ("(module (func (i32.const 0x100000000)))", "not a valid i32"),
    ("(module (func (f32.const 1e39)))", "not a valid f32"),
    ("(module (func (f32x4.extract_lane 4 (v128.const i32x4 0 0 0 0))))", "lane index"),
    ("(module (func (i32.load align=3 (i32.const 0))))", "power of two"),
    ("(module (func (nop))", "unbalanced parentheses"),
    ("(module (func (nop))) (func)", "text after the module"),
    ("(module (rec))", "unsupported module field 'rec'"),
    ("(module (func $f) (func $f))", "duplicate func"),
    ("(module (func (v128.const i32x4 1 2)))", "needs 4 lanes"),
    ("(module (func block end end))", "end outside a block"),
    ("(module (func ; (nop)))", "unknown or unsupported instruction ';'"),
])
def test_text_outside_the_subset_is_a_value_error_naming_where(text, message):
    with pytest.raises(ValueError, match=message):
        assemble(text)
