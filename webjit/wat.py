"""Assemble WebAssembly text into a binary module, in pure Python (it runs in Pyodide, where wasmtime does not).

The subset is what webjit's renderers write (templates_wasm/, render_wasm*.py) and a little more around it: module
fields type, import (func, memory incl. `shared`, table, global), func, table, memory, global, export (also inline),
start, elem (active, funcref) and data (active or passive); folded and flat instructions, block/loop/if with labels
and block types, the MVP numeric and memory instructions, SIMD and relaxed SIMD (0xFD), saturating truncation,
bulk memory.copy/fill (0xFC) and atomics (0xFE). Anything else raises ValueError naming the token and its line.

The output equals `wasmtime.wat2wasm(text)` byte for byte, except that no custom "name" section is written.
Types follow the text format's rules: explicit types first, in text order, then each inline type use without a
match appended, in the order the uses appear.
"""
from __future__ import annotations

import re
import struct
from fractions import Fraction

_TOKEN = re.compile(r';;[^\n]*|\(|\)|"(?:[^"\\\n]|\\.)*"|[^\s()";]+|\S')
VALTYPES = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C, "v128": 0x7B, "funcref": 0x70, "externref": 0x6F}
SECTIONS = ["type", "import", "func", "table", "memory", "global", "export", "start", "elem", "code", "data"]
KINDS = {"func": 0, "table": 1, "memory": 2, "global": 3}

# -- opcode tables: name -> opcode bytes; how immediates follow is decided by the sets below -----------------------
_IC, _FC = "eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u", "eq ne lt gt le ge"
_IA = "clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr"
_FA = "abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign"
_MVP = [(0x00, "unreachable nop"), (0x0F, "return"), (0x1A, "drop"),
        (0x28, "i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u i64.load8_s "
               "i64.load8_u i64.load16_s i64.load16_u i64.load32_s i64.load32_u i32.store i64.store f32.store "
               "f64.store i32.store8 i32.store16 i64.store8 i64.store16 i64.store32"),
        (0x45, "i32.eqz " + " ".join("i32." + n for n in _IC.split())),
        (0x50, "i64.eqz " + " ".join("i64." + n for n in _IC.split())),
        (0x5B, " ".join("f32." + n for n in _FC.split())), (0x61, " ".join("f64." + n for n in _FC.split())),
        (0x67, " ".join("i32." + n for n in _IA.split())), (0x79, " ".join("i64." + n for n in _IA.split())),
        (0x8B, " ".join("f32." + n for n in _FA.split())), (0x99, " ".join("f64." + n for n in _FA.split())),
        (0xA7, "i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u i64.extend_i32_s "
               "i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u f32.convert_i32_s "
               "f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u f32.demote_f64 f64.convert_i32_s "
               "f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 "
               "i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64 i32.extend8_s i32.extend16_s "
               "i64.extend8_s i64.extend16_s i64.extend32_s")]
_SAT = "i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s i32.trunc_sat_f64_u i64.trunc_sat_f32_s " \
       "i64.trunc_sat_f32_u i64.trunc_sat_f64_s i64.trunc_sat_f64_u"
_SIMD = ("v128.load v128.load8x8_s v128.load8x8_u v128.load16x4_s v128.load16x4_u v128.load32x2_s v128.load32x2_u "
         "v128.load8_splat v128.load16_splat v128.load32_splat v128.load64_splat v128.store v128.const i8x16.shuffle "
         "i8x16.swizzle i8x16.splat i16x8.splat i32x4.splat i64x2.splat f32x4.splat f64x2.splat "
         "i8x16.extract_lane_s i8x16.extract_lane_u i8x16.replace_lane i16x8.extract_lane_s i16x8.extract_lane_u "
         "i16x8.replace_lane i32x4.extract_lane i32x4.replace_lane i64x2.extract_lane i64x2.replace_lane "
         "f32x4.extract_lane f32x4.replace_lane f64x2.extract_lane f64x2.replace_lane "
         + " ".join(f"{s}.{n}" for s in ("i8x16", "i16x8", "i32x4") for n in _IC.split()) + " "
         + " ".join(f"{s}.{n}" for s in ("f32x4", "f64x2") for n in _FC.split()) + " "
         "v128.not v128.and v128.andnot v128.or v128.xor v128.bitselect v128.any_true v128.load8_lane "
         "v128.load16_lane v128.load32_lane v128.load64_lane v128.store8_lane v128.store16_lane v128.store32_lane "
         "v128.store64_lane v128.load32_zero v128.load64_zero f32x4.demote_f64x2_zero f64x2.promote_low_f32x4 "
         "i8x16.abs i8x16.neg i8x16.popcnt i8x16.all_true i8x16.bitmask i8x16.narrow_i16x8_s i8x16.narrow_i16x8_u "
         "f32x4.ceil f32x4.floor f32x4.trunc f32x4.nearest i8x16.shl i8x16.shr_s i8x16.shr_u i8x16.add "
         "i8x16.add_sat_s i8x16.add_sat_u i8x16.sub i8x16.sub_sat_s i8x16.sub_sat_u f64x2.ceil f64x2.floor "
         "i8x16.min_s i8x16.min_u i8x16.max_s i8x16.max_u f64x2.trunc i8x16.avgr_u i16x8.extadd_pairwise_i8x16_s "
         "i16x8.extadd_pairwise_i8x16_u i32x4.extadd_pairwise_i16x8_s i32x4.extadd_pairwise_i16x8_u "
         "i16x8.abs i16x8.neg i16x8.q15mulr_sat_s i16x8.all_true i16x8.bitmask i16x8.narrow_i32x4_s "
         "i16x8.narrow_i32x4_u i16x8.extend_low_i8x16_s i16x8.extend_high_i8x16_s i16x8.extend_low_i8x16_u "
         "i16x8.extend_high_i8x16_u i16x8.shl i16x8.shr_s i16x8.shr_u i16x8.add i16x8.add_sat_s i16x8.add_sat_u "
         "i16x8.sub i16x8.sub_sat_s i16x8.sub_sat_u f64x2.nearest i16x8.mul i16x8.min_s i16x8.min_u i16x8.max_s "
         "i16x8.max_u _ i16x8.avgr_u i16x8.extmul_low_i8x16_s i16x8.extmul_high_i8x16_s i16x8.extmul_low_i8x16_u "
         "i16x8.extmul_high_i8x16_u i32x4.abs i32x4.neg _ i32x4.all_true i32x4.bitmask _ _ "
         "i32x4.extend_low_i16x8_s i32x4.extend_high_i16x8_s i32x4.extend_low_i16x8_u i32x4.extend_high_i16x8_u "
         "i32x4.shl i32x4.shr_s i32x4.shr_u i32x4.add _ _ i32x4.sub _ _ _ i32x4.mul i32x4.min_s i32x4.min_u "
         "i32x4.max_s i32x4.max_u i32x4.dot_i16x8_s _ i32x4.extmul_low_i16x8_s i32x4.extmul_high_i16x8_s "
         "i32x4.extmul_low_i16x8_u i32x4.extmul_high_i16x8_u i64x2.abs i64x2.neg _ i64x2.all_true i64x2.bitmask _ _ "
         "i64x2.extend_low_i32x4_s i64x2.extend_high_i32x4_s i64x2.extend_low_i32x4_u i64x2.extend_high_i32x4_u "
         "i64x2.shl i64x2.shr_s i64x2.shr_u i64x2.add _ _ i64x2.sub _ _ _ i64x2.mul i64x2.eq i64x2.ne i64x2.lt_s "
         "i64x2.gt_s i64x2.le_s i64x2.ge_s i64x2.extmul_low_i32x4_s i64x2.extmul_high_i32x4_s "
         "i64x2.extmul_low_i32x4_u i64x2.extmul_high_i32x4_u f32x4.abs f32x4.neg _ f32x4.sqrt f32x4.add f32x4.sub "
         "f32x4.mul f32x4.div f32x4.min f32x4.max f32x4.pmin f32x4.pmax f64x2.abs f64x2.neg _ f64x2.sqrt f64x2.add "
         "f64x2.sub f64x2.mul f64x2.div f64x2.min f64x2.max f64x2.pmin f64x2.pmax i32x4.trunc_sat_f32x4_s "
         "i32x4.trunc_sat_f32x4_u f32x4.convert_i32x4_s f32x4.convert_i32x4_u i32x4.trunc_sat_f64x2_s_zero "
         "i32x4.trunc_sat_f64x2_u_zero f64x2.convert_low_i32x4_s f64x2.convert_low_i32x4_u "
         "i8x16.relaxed_swizzle i32x4.relaxed_trunc_f32x4_s i32x4.relaxed_trunc_f32x4_u "
         "i32x4.relaxed_trunc_f64x2_s_zero i32x4.relaxed_trunc_f64x2_u_zero f32x4.relaxed_madd f32x4.relaxed_nmadd "
         "f64x2.relaxed_madd f64x2.relaxed_nmadd i8x16.relaxed_laneselect i16x8.relaxed_laneselect "
         "i32x4.relaxed_laneselect i64x2.relaxed_laneselect f32x4.relaxed_min f32x4.relaxed_max f64x2.relaxed_min "
         "f64x2.relaxed_max i16x8.relaxed_q15mulr_s i16x8.relaxed_dot_i8x16_i7x16_s "
         "i32x4.relaxed_dot_i8x16_i7x16_add_s")
_RMW = " ".join(f"i32.atomic.rmw.{op} i64.atomic.rmw.{op} i32.atomic.rmw8.{op}_u i32.atomic.rmw16.{op}_u "
                f"i64.atomic.rmw8.{op}_u i64.atomic.rmw16.{op}_u i64.atomic.rmw32.{op}_u"
                for op in ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg"))
_ATOMIC = ("memory.atomic.notify memory.atomic.wait32 memory.atomic.wait64 atomic.fence _ _ _ _ _ _ _ _ _ _ _ _ "
           "i32.atomic.load i64.atomic.load i32.atomic.load8_u i32.atomic.load16_u i64.atomic.load8_u "
           "i64.atomic.load16_u i64.atomic.load32_u i32.atomic.store i64.atomic.store i32.atomic.store8 "
           "i32.atomic.store16 i64.atomic.store8 i64.atomic.store16 i64.atomic.store32 " + _RMW)


def uleb(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def _name(s: bytes) -> bytes:
    return uleb(len(s)) + s


OPS: dict[str, bytes] = {}
for _start, _names in _MVP:
    OPS.update({n: bytes((_start + i,)) for i, n in enumerate(_names.split())})
OPS.update({n: b"\xfc" + uleb(i) for i, n in enumerate(_SAT.split())})
OPS.update({n: b"\xfd" + uleb(i) for i, n in enumerate(_SIMD.split()) if n != "_"})
OPS.update({n: b"\xfe" + uleb(i) for i, n in enumerate(_ATOMIC.split()) if n != "_"})
OPS.update({"memory.copy": b"\xfc\x0a\x00\x00", "memory.fill": b"\xfc\x0b\x00", "memory.size": b"\x3f\x00",
            "memory.grow": b"\x40\x00", "atomic.fence": b"\xfe\x03\x00"})


def _natural(name: str) -> int | None:
    """log2 of the natural alignment of a memory instruction's access; None for other instructions."""
    if name in ("v128.load", "v128.store"):
        return 4
    if re.search(r"load\d+x\d+", name):
        return 3
    m = re.search(r"(?:load|store|rmw|wait)(\d*)", name)
    if m is None and name != "memory.atomic.notify":
        return None
    return {"8": 0, "16": 1, "32": 2, "64": 3}[m and m.group(1) or ("32" if m is None else name[1:3])]


MEMORY = {n: a for n in OPS if (a := _natural(n)) is not None}  # memarg immediates, and the natural alignment
LANES = {n: 16 // (1 << MEMORY[n]) if n.startswith("v128.") else int(n.split(".")[0].split("x")[1])
         for n in OPS if n.endswith(("_lane", "_lane_s", "_lane_u"))}  # a lane index immediate, and the number of lanes
PLAIN = {n: b for n, b in OPS.items() if n not in MEMORY and n not in LANES
         and n not in ("v128.const", "i8x16.shuffle")}
SHAPES = {"i8x16": (16, "b", "int"), "i16x8": (8, "h", "int"), "i32x4": (4, "i", "int"), "i64x2": (2, "q", "int"),
          "f32x4": (4, "f", "float"), "f64x2": (2, "d", "float")}


# -- literals ------------------------------------------------------------------------------------------------------
def _int(tok: str, bits: int) -> int:
    """An integer literal (sign, decimal or hex, underscores), wrapped to the signed range of `bits`."""
    s = tok.replace("_", "")
    neg = s[:1] == "-"
    s = s.lstrip("+-")
    v = int(s[2:], 16) if s[:2] in ("0x", "0X") else int(s, 10) if s.isdigit() else None
    if v is None or "__" in tok or tok.endswith("_") or (-v if neg else v) < -(1 << bits - 1) or v >= 1 << bits:
        raise ValueError(f"integer constant {tok!r} is not a valid i{bits}")
    v = -v if neg else v
    return v - (1 << bits) if v >= 1 << bits - 1 else v


def _exact(s: str) -> Fraction:
    """The exact value of an unsigned decimal or hex float literal."""
    if s[:2] not in ("0x", "0X"):
        return Fraction(s)
    m, _, e = s[2:].lower().partition("p")
    whole, _, frac = m.partition(".")
    return Fraction(int(whole + frac or "0", 16)) * Fraction(2) ** (int(e or "0") - 4 * len(frac))


def _float(tok: str, bits: int) -> int:
    """A float literal (decimal, hex, inf, nan, nan:0x...) as the bit pattern of an IEEE float of `bits`."""
    s = tok.replace("_", "")
    sign = 1 << bits - 1 if s[:1] == "-" else 0
    s = s.lstrip("+-")
    mant, ebits = (23, 8) if bits == 32 else (52, 11)
    if s == "inf":
        return sign | (1 << ebits) - 1 << mant
    if s.startswith("nan"):
        payload = 1 << mant - 1 if s == "nan" else int(s[6:], 16) if s.startswith("nan:0x") else 0
        if not 0 < payload < 1 << mant:
            raise ValueError(f"NaN payload of {tok!r} is out of range")
        return sign | (1 << ebits) - 1 << mant | payload
    try:
        d = float.fromhex(s) if s[:2] in ("0x", "0X") else float(s)
        if bits == 64:
            if d == float("inf"):
                raise OverflowError
            return sign | struct.unpack("<Q", struct.pack("<d", d))[0]
        b = struct.unpack("<I", struct.pack("<f", d))[0]
    except (OverflowError, ValueError):
        raise ValueError(f"float constant {tok!r} is not a valid f{bits}") from None
    f = struct.unpack("<f", struct.pack("<I", b))[0]
    if f != d and b + 1 < 0x7F800000:  # d may sit on a midpoint of two f32: round the exact value instead
        other = b + 1 if d > f else b - 1
        g = struct.unpack("<f", struct.pack("<I", other))[0]
        if (f + g) / 2 == d:
            x = _exact(s)
            if abs(Fraction(g) - x) < abs(Fraction(f) - x):
                b = other
    return sign | b


# -- tokens --------------------------------------------------------------------------------------------------------
def _strip_block_comments(text: str) -> str:
    """Block comments (; ... ;), which nest, replaced by spaces (newlines kept, so lines still count)."""
    out, i, depth, start = [], 0, 0, 0
    while i < len(text):
        two = text[i:i + 2]
        if depth == 0 and text[i] == '"':
            m = re.compile(r'"(?:[^"\\\n]|\\.)*"').match(text, i)
            i = m.end() if m else i + 1
        elif depth == 0 and two == ";;":
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
        elif two == "(;":
            if depth == 0:
                out.append(text[start:i])
                start = i
            depth, i = depth + 1, i + 2
        elif depth and two == ";)":
            depth, i = depth - 1, i + 2
            if depth == 0:
                out.append(re.sub(r"[^\n]", " ", text[start:i]))
                start = i
        else:
            i += 1
    if depth:
        raise ValueError("unterminated block comment")
    return "".join(out) + text[start:]


def _string(tok: str) -> bytes:
    if tok[:1] != '"' or len(tok) < 2 or tok[-1] != '"':
        raise ValueError(f"expected a string, got {tok!r}")
    out, s, i = bytearray(), tok[1:-1], 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            j = s.find("\\", i)
            j = len(s) if j < 0 else j
            out += s[i:j].encode()
            i = j
            continue
        e = s[i + 1]
        if e in 'tnr"\'\\':
            out += {"t": b"\t", "n": b"\n", "r": b"\r"}.get(e, e.encode())
            i += 2
        elif e == "u":
            j = s.index("}", i)
            out += chr(int(s[i + 3:j].replace("_", ""), 16)).encode()
            i = j + 1
        else:
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
    return bytes(out)


def _lane(tok: str, lanes: int) -> int:
    if not tok.isdigit() or int(tok) >= lanes:
        raise ValueError(f"lane index {tok!r} is not below {lanes}")
    return int(tok)


class _Error(ValueError):
    """An error already located in the text."""


# -- the assembler -------------------------------------------------------------------------------------------------
class _Assembler:
    """Two passes over the tokens: the first finds the module's fields and names every index space, the second
    encodes the fields in text order (inline type uses get their indices in that order, as in wasmtime)."""

    def __init__(self, text: str):
        self.text = _strip_block_comments(text) if "(;" in text else text
        self.toks = [t for t in _TOKEN.findall(self.text) if t[0] != ";" or t[1:2] != ";"]
        self.i = 0
        self.space = {k: {} for k in ("func", "table", "memory", "global", "type")}
        self.count = dict.fromkeys(self.space, 0)
        self.types: list[tuple[bytes, bytes]] = []      # (params, results) as valtype bytes
        self.type_index: dict[tuple[bytes, bytes], int] = {}
        self.consts: dict[str, bytes] = {}
        self.sections = {name: [] for name in SECTIONS}
        self.imports: dict[str, int] = {}   # first pass: imports of each kind so far
        self.seen: dict[str, int] = {}      # second pass: items of each kind so far
        self.locals: dict[str, int] = {}
        self.labels: list[str | None] = []
        self._close: dict[int, int] | None = None  # token index of "(" -> of its ")" (see skip)

    # -- errors and tokens -----------------------------------------------------------------------------------------
    def where(self, k: int) -> str:
        n = -1
        for m in _TOKEN.finditer(self.text):
            t = m.group()
            if t[0] != ";" or t[1:2] != ";":
                n += 1
                if n == k:
                    return f"line {self.text.count(chr(10), 0, m.start()) + 1} (at {t!r})"
        return "end of text"

    def fail(self, msg: str, k: int | None = None):
        raise _Error(f"{self.where(self.i if k is None else k)}: {msg}")

    def expect(self, tok: str):
        if self.toks[self.i] != tok:
            self.fail(f"expected {tok!r}")
        self.i += 1

    def opt_id(self) -> str | None:
        t = self.toks[self.i]
        if t[0] == "$":
            self.i += 1
            return t
        return None

    def uint(self, tok: str) -> int:
        v = _int(tok, 32)
        if tok[0] == "-":
            self.fail(f"expected an unsigned integer, got {tok!r}")
        return v & 0xFFFFFFFF

    def index(self, kind: str) -> int:
        t = self.toks[self.i]
        self.i += 1
        if t[0] == "$":
            v = self.space[kind].get(t)
            if v is None:
                self.fail(f"unknown {kind} {t}", self.i - 1)
            return v
        return self.uint(t)

    def skip(self, i: int) -> int:
        """The index after the parenthesised form starting at token i."""
        if self._close is None:  # every "(" paired with its ")", once, in one pass
            self._close, stack = {}, []
            for j, t in enumerate(self.toks):
                if t == "(":
                    stack.append(j)
                elif t == ")" and stack:
                    self._close[stack.pop()] = j
        j = self._close.get(i)
        if j is None:
            self.fail("unbalanced parentheses", i)
        return j + 1

    def valtype(self) -> int:
        t = self.toks[self.i]
        if t not in VALTYPES:
            self.fail(f"expected a value type, got {t!r}")
        self.i += 1
        return VALTYPES[t]

    # -- types -----------------------------------------------------------------------------------------------------
    def signature(self, names: dict | None = None) -> tuple[bytes, bytes, bool]:
        """(param ...)* (result ...)*: (params, results, whether any was written); param $ids go into `names`."""
        toks, params, results = self.toks, bytearray(), bytearray()
        seen = False
        while toks[self.i] == "(" and toks[self.i + 1] in ("param", "result"):
            what = toks[self.i + 1]
            if what == "param" and results:
                self.fail("param after result")
            seen, self.i = True, self.i + 2
            ident = self.opt_id() if what == "param" else None
            if ident is not None:
                if names is None:
                    self.fail("named param here")
                names[ident] = len(params)
                params.append(self.valtype())
            else:
                while toks[self.i] != ")":
                    (params if what == "param" else results).append(self.valtype())
            self.expect(")")
        return bytes(params), bytes(results), seen

    def type_of(self, sig: tuple[bytes, bytes]) -> int:
        """The index of the first type with this signature, appended as a new type when there is none."""
        idx = self.type_index.get(sig)
        if idx is None:
            idx = self.type_index[sig] = len(self.types)
            self.types.append(sig)
        return idx

    def typeuse(self, names: dict | None = None) -> int:
        toks, explicit = self.toks, None
        if toks[self.i] == "(" and toks[self.i + 1] == "type":
            self.i += 2
            explicit = self.index("type")
            self.expect(")")
        params, results, seen = self.signature(names)
        if explicit is None:
            return self.type_of((params, results))
        if explicit >= len(self.types) or (seen and self.types[explicit] != (params, results)):
            self.fail("type use does not match its type")
        return explicit

    def blocktype(self) -> bytes:
        toks = self.toks
        if toks[self.i] != "(" or toks[self.i + 1] not in ("type", "param", "result"):
            return b"\x40"
        if toks[self.i + 1] == "type":
            return sleb(self.typeuse())
        params, results, _ = self.signature()
        if params or len(results) > 1:
            return sleb(self.type_of((params, results)))
        return results or b"\x40"

    def limits(self, shared_ok: bool) -> bytes:
        toks = self.toks
        lo = self.uint(toks[self.i])
        self.i += 1
        hi = None
        if toks[self.i][0].isdigit():
            hi = self.uint(toks[self.i])
            self.i += 1
        shared = toks[self.i] == "shared" and shared_ok
        if shared:
            self.i += 1
            if hi is None:
                self.fail("a shared memory needs a maximum")
        flags = b"\x03" if shared else b"\x00" if hi is None else b"\x01"
        return flags + uleb(lo) + (b"" if hi is None else uleb(hi))

    def globaltype(self) -> bytes:
        toks = self.toks
        if toks[self.i] == "(" and toks[self.i + 1] == "mut":
            self.i += 2
            t = self.valtype()
            self.expect(")")
            return bytes((t, 1))
        return bytes((self.valtype(), 0))

    # -- the module ------------------------------------------------------------------------------------------------
    def module(self) -> bytes:
        toks, end = self.toks, len(self.toks)
        if toks[:2] == ["(", "module"]:
            self.i = 2
            self.opt_id()
            end = self.skip(0) - 1
            if end != len(toks) - 1:
                self.fail("text after the module", end + 1)
        fields = []
        while self.i < end:
            if toks[self.i] != "(":
                self.fail("expected a module field")
            j = self.skip(self.i)
            fields.append((toks[self.i + 1], self.i))
            self.name_field(toks[self.i + 1])
            self.i = j
        for kind, at in fields:
            self.i = at + 2
            getattr(self, "field_" + kind)()
            self.expect(")")
        self.sections["type"] = [b"\x60" + _vec([bytes((t,)) for t in p]) + _vec([bytes((t,)) for t in r])
                                 for p, r in self.types]
        out = bytearray(b"\x00asm\x01\x00\x00\x00")
        for sid, name in enumerate(SECTIONS, 1):
            items = self.sections[name]
            if items:
                body = items[0] if name == "start" else _vec(items)
                out += bytes((sid,)) + uleb(len(body)) + body
        return bytes(out)

    def name_field(self, kind: str):
        """First pass: give the field's item its index (and $id); record explicit types."""
        toks = self.toks
        self.i += 2
        if kind == "import":
            self.i += 2
            self.expect("(")
            kind = toks[self.i]
            if kind in self.space and kind != "type" and self.count[kind] > self.imports.get(kind, 0):
                self.fail(f"import of a {kind} after a {kind} definition")
            self.imports[kind] = self.imports.get(kind, 0) + 1
            self.i += 1
        if kind not in ("func", "table", "memory", "global", "type"):
            if kind not in ("export", "start", "elem", "data"):
                self.fail(f"unsupported module field {kind!r}", self.i - 1)
            return
        ident = self.opt_id()
        if ident is not None:
            if ident in self.space[kind]:
                self.fail(f"duplicate {kind} {ident}", self.i - 1)
            self.space[kind][ident] = self.count[kind]
        self.count[kind] += 1
        if kind == "type":
            self.expect("(")
            self.expect("func")
            params, results, _ = self.signature({})
            self.type_index.setdefault((params, results), len(self.types))
            self.types.append((params, results))

    def inline_exports(self, kind: str, ident_at: int):
        toks = self.toks
        while toks[self.i] == "(" and toks[self.i + 1] == "export":
            self.i += 2
            name = _string(toks[self.i])
            self.i += 1
            self.expect(")")
            self.sections["export"].append(_name(name) + bytes((KINDS[kind],)) + uleb(ident_at))
        if toks[self.i] == "(" and toks[self.i + 1] == "import":
            self.fail("inline imports are not supported: write an import field")

    def item(self, kind: str) -> int:
        """The index of the item whose field starts here (after the keyword), past its $id and inline exports."""
        ident = self.opt_id()
        idx = self.space[kind][ident] if ident else self.seen.get(kind, 0)
        self.seen[kind] = idx + 1
        self.inline_exports(kind, idx)
        return idx

    def field_type(self):
        self.i = self.skip(self.i - 2) - 1

    def field_import(self):
        mod, name = _string(self.toks[self.i]), _string(self.toks[self.i + 1])
        self.i += 2
        self.expect("(")
        kind = self.toks[self.i]
        self.i += 1
        if kind not in KINDS:
            self.fail(f"cannot import a {kind!r}")
        self.item(kind)
        if kind == "func":
            desc = uleb(self.typeuse())
        elif kind == "table":  # limits then reftype in the text, reftype then limits in the binary
            lim = self.limits(False)
            desc = bytes((self.valtype(),)) + lim
        else:
            desc = self.limits(True) if kind == "memory" else self.globaltype()
        self.sections["import"].append(_name(mod) + _name(name) + bytes((KINDS[kind],)) + desc)
        self.expect(")")

    def field_func(self):
        self.item("func")
        names: dict[str, int] = {}
        t = self.typeuse(names)
        self.sections["func"].append(uleb(t))
        n = len(self.types[t][0])
        toks, groups = self.toks, []
        while toks[self.i] == "(" and toks[self.i + 1] == "local":
            self.i += 2
            ident = self.opt_id()
            if ident is not None:
                names[ident] = n
                vt = [self.valtype()]
            else:
                vt = []
                while toks[self.i] != ")":
                    vt.append(self.valtype())
            for v in vt:
                if groups and groups[-1][1] == v:
                    groups[-1][0] += 1
                else:
                    groups.append([1, v])
            n += len(vt)
            self.expect(")")
        self.locals, self.labels = names, []
        body = bytearray(_vec([uleb(c) + bytes((v,)) for c, v in groups]))
        self.instrs(body)
        if self.labels:
            self.fail("a block is not closed with end")
        body.append(0x0B)
        self.sections["code"].append(uleb(len(body)) + body)

    def field_table(self):
        self.item("table")
        lim = self.limits(False)
        self.sections["table"].append(bytes((self.valtype(),)) + lim)

    def field_memory(self):
        self.item("memory")
        self.sections["memory"].append(self.limits(True))

    def field_global(self):
        self.item("global")
        self.sections["global"].append(self.globaltype() + self.const_expr())

    def const_expr(self) -> bytes:
        self.locals, self.labels = {}, []
        out = bytearray()
        self.instrs(out)
        out.append(0x0B)
        return bytes(out)

    def field_export(self):
        name = _string(self.toks[self.i])
        self.i += 1
        self.expect("(")
        kind = self.toks[self.i]
        if kind not in KINDS:
            self.fail(f"cannot export a {kind!r}")
        self.i += 1
        self.sections["export"].append(_name(name) + bytes((KINDS[kind],)) + uleb(self.index(kind)))
        self.expect(")")

    def field_start(self):
        self.sections["start"].append(uleb(self.index("func")))

    def offset(self) -> bytes:
        """The offset of an active segment: (offset instr*) or one folded instruction."""
        toks = self.toks
        if toks[self.i + 1] == "offset":
            self.i += 2
            expr = self.const_expr()
            self.expect(")")
            return expr
        out = bytearray()
        self.locals, self.labels = {}, []
        self.folded(out)
        return bytes(out) + b"\x0b"

    def field_elem(self):
        toks = self.toks
        self.opt_id()
        table = 0
        if toks[self.i] == "(" and toks[self.i + 1] == "table":
            self.i += 2
            table = self.index("table")
            self.expect(")")
        if toks[self.i] != "(":
            self.fail("only active element segments are supported")
        expr = self.offset()
        if toks[self.i] == "func":
            self.i += 1
        funcs = []
        while toks[self.i] != ")":
            funcs.append(uleb(self.index("func")))
        head = b"\x00" + expr if table == 0 else b"\x02" + uleb(table) + expr + b"\x00"  # elemkind funcref
        self.sections["elem"].append(head + _vec(funcs))

    def field_data(self):
        toks = self.toks
        self.opt_id()
        memory, head = 0, b"\x01"
        if toks[self.i] == "(" and toks[self.i + 1] == "memory":
            self.i += 2
            memory = self.index("memory")
            self.expect(")")
        if toks[self.i] == "(":
            expr = self.offset()
            head = (b"\x00" if memory == 0 else b"\x02" + uleb(memory)) + expr
        data = bytearray()
        while toks[self.i] != ")":
            data += _string(toks[self.i])
            self.i += 1
        self.sections["data"].append(head + uleb(len(data)) + data)

    # -- instructions ----------------------------------------------------------------------------------------------
    def instrs(self, out: bytearray):
        """Instructions, folded or flat, up to the ')' that closes the enclosing form (not consumed)."""
        toks, plain = self.toks, PLAIN
        while True:
            t = toks[self.i]
            if t == ")":
                return
            if t == "(":
                self.folded(out)
                continue
            self.i += 1
            b = plain.get(t)
            if b is not None:
                out += b
            elif t in ("block", "loop", "if"):
                self.labels.append(self.opt_id())
                out += (b"\x02" if t == "block" else b"\x03" if t == "loop" else b"\x04") + self.blocktype()
            elif t in ("else", "end"):
                if not self.labels:
                    self.fail(f"{t} outside a block", self.i - 1)
                if toks[self.i][0] == "$":
                    if toks[self.i] != self.labels[-1]:
                        self.fail(f"{t} label does not match its block")
                    self.i += 1
                if t == "end":
                    self.labels.pop()
                out += b"\x05" if t == "else" else b"\x0b"
            else:
                out += self.op(t)

    def folded(self, out: bytearray):
        """One folded instruction: its operands, then itself; block, loop and if with their bodies."""
        toks = self.toks
        name = toks[self.i + 1]
        self.i += 2
        if name in ("block", "loop"):
            self.labels.append(self.opt_id())
            out += (b"\x02" if name == "block" else b"\x03") + self.blocktype()
            self.instrs(out)
            out.append(0x0B)
            self.labels.pop()
        elif name == "if":
            label = self.opt_id()
            bt = self.blocktype()
            while toks[self.i] == "(" and toks[self.i + 1] not in ("then", "else"):
                self.folded(out)
            out += b"\x04" + bt
            self.labels.append(label)
            self.expect("(")
            self.expect("then")
            self.instrs(out)
            self.expect(")")
            if toks[self.i] == "(" and toks[self.i + 1] == "else":
                self.i += 2
                out.append(0x05)
                self.instrs(out)
                self.expect(")")
            out.append(0x0B)
            self.labels.pop()
        else:
            b = PLAIN.get(name)
            if b is None:
                b = self.op(name)
            while toks[self.i] == "(":
                self.folded(out)
            out += b
        self.expect(")")

    def op(self, name: str) -> bytes:
        """An instruction with immediates (or none), its immediates read from the tokens that follow."""
        b = PLAIN.get(name)
        if b is not None:
            return b
        h = _HANDLERS.get(name)
        if h is not None:
            return h(self, name)
        if name in MEMORY:
            return self.memarg(name)
        if name in LANES:
            t = self.toks[self.i]
            self.i += 1
            return OPS[name] + bytes((_lane(t, LANES[name]),))
        self.fail(f"unknown or unsupported instruction {name!r}", self.i - 1)

    def memarg(self, name: str) -> bytes:
        toks = self.toks
        offset, align = 0, MEMORY[name]
        t = toks[self.i]
        if t.startswith("offset="):
            offset = self.uint(t[7:])
            self.i += 1
            t = toks[self.i]
        if t.startswith("align="):
            a = self.uint(t[6:])
            if a == 0 or a & (a - 1):
                self.fail(f"alignment {a} is not a power of two")
            align = a.bit_length() - 1
            self.i += 1
        out = OPS[name] + uleb(align) + uleb(offset)
        if name in LANES:
            t = toks[self.i]
            self.i += 1
            if toks[self.i][0].isdigit():
                self.fail("memory indices are not supported")
            out += bytes((_lane(t, LANES[name]),))
        return out

    def local(self, name: str) -> bytes:
        t = self.toks[self.i]
        self.i += 1
        v = self.locals.get(t)
        if v is None:
            if t[0] == "$":
                self.fail(f"unknown local {t}", self.i - 1)
            v = self.uint(t)
        return _LOCAL[name] + uleb(v)

    def index_op(self, name: str) -> bytes:
        kind, code = _INDEXED[name]
        return code + uleb(self.index(kind))

    def label(self) -> bytes:
        t = self.toks[self.i]
        self.i += 1
        if t[0] != "$":
            return uleb(self.uint(t))
        labels = self.labels
        for k in range(len(labels) - 1, -1, -1):
            if labels[k] == t:
                return uleb(len(labels) - 1 - k)
        self.fail(f"unknown label {t}", self.i - 1)

    def br(self, name: str) -> bytes:
        return (b"\x0c" if name == "br" else b"\x0d") + self.label()

    def br_table(self, name: str) -> bytes:
        toks, targets = self.toks, []
        while toks[self.i][0] == "$" or toks[self.i][0].isdigit():
            targets.append(self.label())
        if not targets:
            self.fail("br_table needs a default label")
        return b"\x0e" + _vec(targets[:-1]) + targets[-1]

    def call_indirect(self, name: str) -> bytes:
        t = self.toks[self.i]
        table = self.index("table") if t[0] == "$" or t[0].isdigit() else 0
        return b"\x11" + uleb(self.typeuse()) + uleb(table)

    def select(self, name: str) -> bytes:
        params, results, seen = self.signature()
        if params:
            self.fail("select takes no params")
        return b"\x1c" + _vec([bytes((r,)) for r in results]) if seen else b"\x1b"

    def const(self, name: str) -> bytes:
        t = self.toks[self.i]
        self.i += 1
        key = name[:3] + t
        b = self.consts.get(key)
        if b is None:
            if name[0] == "i":
                b = OPS_CONST[name] + sleb(_int(t, int(name[1:3])))
            else:
                b = OPS_CONST[name] + struct.pack("<I" if name[1] == "3" else "<Q", _float(t, int(name[1:3])))
            self.consts[key] = b
        return b

    def v128_const(self, name: str) -> bytes:
        shape = self.toks[self.i]
        if shape not in SHAPES:
            self.fail(f"unknown v128.const shape {shape!r}")
        n, fmt, kind = SHAPES[shape]
        lanes = self.toks[self.i + 1:self.i + 1 + n]
        self.i += 1 + n
        key = shape + " ".join(lanes)
        b = self.consts.get(key)
        if b is None:
            bits = 128 // n
            if len(lanes) < n or ")" in lanes or "(" in lanes:
                self.fail(f"v128.const {shape} needs {n} lanes")
            conv = _int if kind == "int" else _float
            b = self.consts[key] = b"\xfd\x0c" + b"".join(
                (conv(t, bits) & (1 << bits) - 1).to_bytes(bits // 8, "little") for t in lanes)
        return b

    def shuffle(self, name: str) -> bytes:
        lanes = self.toks[self.i:self.i + 16]
        self.i += 16
        return b"\xfd\x0d" + bytes(_lane(t, 32) for t in lanes)


OPS_CONST = {"i32.const": b"\x41", "i64.const": b"\x42", "f32.const": b"\x43", "f64.const": b"\x44"}
_LOCAL = {"local.get": b"\x20", "local.set": b"\x21", "local.tee": b"\x22"}
_INDEXED = {"global.get": ("global", b"\x23"), "global.set": ("global", b"\x24"), "call": ("func", b"\x10")}
_HANDLERS = {**dict.fromkeys(_LOCAL, _Assembler.local), **dict.fromkeys(_INDEXED, _Assembler.index_op),
             **dict.fromkeys(OPS_CONST, _Assembler.const), "br": _Assembler.br, "br_if": _Assembler.br,
             "br_table": _Assembler.br_table, "call_indirect": _Assembler.call_indirect,
             "select": _Assembler.select, "v128.const": _Assembler.v128_const, "i8x16.shuffle": _Assembler.shuffle}


def assemble(text: str) -> bytes:
    """The binary module of WebAssembly text `text` (module fields, optionally inside `(module ...)`)."""
    a = _Assembler(text)
    try:
        return a.module()
    except _Error:
        raise
    except IndexError:
        raise ValueError("unexpected end of text: a form is not closed") from None
    except ValueError as e:
        raise ValueError(f"{a.where(a.i - 1)}: {e}") from None
