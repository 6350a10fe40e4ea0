"""A dependency-free ONNX reader: the protobuf wire format decoded with the Python standard library only.

This lets the compiler read models where numpy, onnx and protobuf do not exist (Pyodide in a browser). It
decodes only what webjit needs from onnx/onnx.proto; every other field is skipped, as protobuf does.

    model = load("model.onnx")            # also reads external data next to the file
    for t in model.graph.initializers:    # t.dtype == "float32", t.dims == (384, 384)
        raw = t.data                      # little-endian bytes (a memoryview: no copy of large weights)

Tensor data is always little-endian raw bytes, whichever field the file stored it in (raw_data, float_data,
int32_data, ...). Sub-byte types (int4, uint4, float4, int2, ...) keep ONNX's packed layout. String tensors
have empty `data` and their values in `strings`.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WebjitError

# ---------------------------------------------------------------------------------------------------------------
# Schemas: field number -> (name, kind), from onnx/onnx.proto. A kind is a scalar kind ("int": signed varint,
# "uint": unsigned varint, "f32": fixed32 float, "f64": fixed64 double, "str", "bytes") or another schema
# (a nested message). A kind in a one-element list marks a repeated field.

_STRING_PAIR = {1: ("key", "str"), 2: ("value", "str")}
_OPSET_ID = {1: ("domain", "str"), 2: ("version", "int")}
_DIMENSION = {1: ("dim_value", "int"), 2: ("dim_param", "str")}
_SHAPE = {1: ("dim", [_DIMENSION])}
_TENSOR_TYPE = {1: ("elem_type", "int"), 2: ("shape", _SHAPE)}
_TYPE = {1: ("tensor_type", _TENSOR_TYPE)}
_VALUE_INFO = {1: ("name", "str"), 2: ("type", _TYPE)}
_TENSOR = {1: ("dims", ["int"]), 2: ("data_type", "int"), 4: ("float_data", ["f32"]), 5: ("int32_data", ["int"]),
           6: ("string_data", ["bytes"]), 7: ("int64_data", ["int"]), 8: ("name", "str"), 9: ("raw_data", "bytes"),
           10: ("double_data", ["f64"]), 11: ("uint64_data", ["uint"]), 13: ("external_data", [_STRING_PAIR]),
           14: ("data_location", "int")}
_ATTRIBUTE = {1: ("name", "str"), 20: ("type", "int"), 2: ("f", "f32"), 3: ("i", "int"), 4: ("s", "bytes"),
              5: ("t", _TENSOR), 7: ("floats", ["f32"]), 8: ("ints", ["int"]), 9: ("strings", ["bytes"]),
              10: ("tensors", [_TENSOR]), 22: ("sparse_tensor", "bytes"), 14: ("tp", "bytes"),
              23: ("sparse_tensors", ["bytes"]), 15: ("type_protos", ["bytes"])}
_NODE = {1: ("input", ["str"]), 2: ("output", ["str"]), 3: ("name", "str"), 4: ("op_type", "str"),
         7: ("domain", "str"), 5: ("attribute", [_ATTRIBUTE])}
_GRAPH = {1: ("node", [_NODE]), 2: ("name", "str"), 5: ("initializer", [_TENSOR]), 11: ("input", [_VALUE_INFO]),
          12: ("output", [_VALUE_INFO]), 13: ("value_info", [_VALUE_INFO])}
_ATTRIBUTE.update({6: ("g", _GRAPH), 11: ("graphs", [_GRAPH])})  # subgraphs (If, Loop, Scan bodies)
_MODEL = {1: ("ir_version", "int"), 2: ("producer_name", "str"), 7: ("graph", _GRAPH), 8: ("opset_import", [_OPSET_ID])}

MAX_DEPTH = 100  # messages nested deeper than this are refused, as protobuf's own parsers do by default

_WIRE_TYPE = {"int": 0, "uint": 0, "f32": 5, "f64": 1, "str": 2, "bytes": 2}

# TensorProto.DataType -> (numpy dtype name, struct format of one element in int32_data / int64_data / uint64_data).
# Types stored in float_data or double_data need no format: their packed values already are little-endian bytes.
DTYPES = {
    1: ("float32", None), 2: ("uint8", "B"), 3: ("int8", "b"), 4: ("uint16", "H"), 5: ("int16", "h"),
    6: ("int32", "i"), 7: ("int64", "q"), 8: ("object", None), 9: ("bool", "?"), 10: ("float16", "H"),
    11: ("float64", None), 12: ("uint32", "I"), 13: ("uint64", "Q"), 14: ("complex64", None),
    15: ("complex128", None), 16: ("bfloat16", "H"), 17: ("float8_e4m3fn", "B"), 18: ("float8_e4m3fnuz", "B"),
    19: ("float8_e5m2", "B"), 20: ("float8_e5m2fnuz", "B"), 21: ("uint4", "B"), 22: ("int4", "B"),
    23: ("float4_e2m1fn", "B"), 24: ("float8_e8m0fnu", "B"), 25: ("uint2", "B"), 26: ("int2", "B"),
    27: ("float6_e2m3fn", "B"), 28: ("float6_e3m2fn", "B"),
}

# AttributeProto.AttributeType -> the field holding its value.
ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 5: "g", 6: "floats", 7: "ints", 8: "strings", 9: "tensors",
                    10: "graphs", 11: "sparse_tensor", 12: "sparse_tensors", 13: "tp", 14: "type_protos"}
_UNHANDLED_ATTRIBUTES = {"sparse_tensor", "sparse_tensors", "tp", "type_protos"}


def dtype_name(elem_type: int) -> str:
    if elem_type not in DTYPES:
        raise WebjitError(f"unknown ONNX element type {elem_type}")
    return DTYPES[elem_type][0]


# ---------------------------------------------------------------------------------------------------------------
# What load() returns.

@dataclass
class Tensor:
    name: str
    dtype: str                  # numpy naming: "float32", "int64", "bfloat16", ...
    dims: tuple[int, ...]
    data: bytes | memoryview    # little-endian raw bytes
    strings: list[bytes] | None = None  # the values of a string tensor


@dataclass
class ValueInfo:
    name: str
    elem_type: int | None       # None when the value is not a tensor (sequence, map, ...)
    shape: tuple[int | str | None, ...] | None  # None: unknown rank; a None dim has neither value nor name

    @property
    def dtype(self) -> str | None:
        return None if self.elem_type is None else dtype_name(self.elem_type)


@dataclass
class Attribute:
    name: str
    type: int                   # AttributeProto.AttributeType
    value: Any                  # float, int, bytes, Tensor, Graph, or a list of one of those


@dataclass
class Node:
    op_type: str
    name: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attributes: list[Attribute] = field(default_factory=list)

    @property
    def attrs(self) -> dict[str, Any]:
        return {a.name: a.value for a in self.attributes}


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    initializers: list[Tensor]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    value_info: list[ValueInfo]


@dataclass
class Model:
    ir_version: int
    producer_name: str
    opset_import: dict[str, int]  # domain -> version
    graph: Graph

    @property
    def opset(self) -> int:
        """The version of the default ("" or "ai.onnx") operator set, 0 when absent."""
        return next((v for d, v in self.opset_import.items() if d in ("", "ai.onnx")), 0)


# ---------------------------------------------------------------------------------------------------------------
# Entry points.

def load(path: str | os.PathLike) -> Model:
    """Read an ONNX file and the external data it points to (relative to the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise WebjitError(f"{path}: no such file")
    return _Reader(path.read_bytes(), path.parent, str(path)).model()


def external_locations(path: str | os.PathLike) -> list[str]:
    """The external data files a model refers to (locations relative to its folder, in order of first use),
    without reading them."""
    path = Path(path)
    if not path.is_file():
        raise WebjitError(f"{path}: no such file")
    reader = _Reader(path.read_bytes(), None, str(path))
    reader.locations = []
    reader.model()
    return list(dict.fromkeys(reader.locations))


def parse(data: bytes, folder: str | os.PathLike | None = None) -> Model:
    """Decode a serialized ModelProto. External data is read from `folder`; without one it is an error."""
    return _Reader(bytes(data), None if folder is None else Path(folder), "ONNX bytes").model()


# ---------------------------------------------------------------------------------------------------------------
# The decoder.

class _Reader:
    def __init__(self, buf: bytes, folder: Path | None, label: str):
        self.buf, self.view, self.folder, self.label = buf, memoryview(buf), folder, label
        self.files: dict[Path, memoryview] = {}  # external data files, each read once
        self.locations: list[str] | None = None  # when a list: only note external data locations in it
        self.depth = 0  # messages open around the one being decoded

    def bad(self, why: str) -> WebjitError:
        return WebjitError(f"{self.label}: not an ONNX model ({why})")

    def model(self) -> Model:
        d = self.message(0, len(self.buf), _MODEL)
        g = d.get("graph")
        if g is None or not (g.get("node") or g.get("output")):
            raise self.bad("no graph")
        opsets = {o.get("domain", ""): o.get("version", 0) for o in d.get("opset_import", [])}
        return Model(d.get("ir_version", 0), d.get("producer_name", ""), opsets, self.graph(g))

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        buf, result, shift = self.buf, 0, 0
        while True:
            if pos >= end:
                raise self.bad(f"truncated varint at byte {pos}")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.bad(f"varint longer than 10 bytes at byte {pos}")

    def message(self, pos: int, end: int, schema: dict) -> dict:
        """Decode buf[pos:end] as one message. Absent fields are absent keys; repeated fields are lists."""
        out: dict[str, Any] = {}
        while pos < end:
            start = pos
            key, pos = self.varint(pos, end)
            num, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = self.varint(pos, end)
            elif wire == 2:
                n, pos = self.varint(pos, end)
                value = (pos, pos + n)
                pos += n
            elif wire == 5:
                value = (pos, pos + 4)
                pos += 4
            elif wire == 1:
                value = (pos, pos + 8)
                pos += 8
            else:
                raise self.bad(f"wire type {wire} at byte {start}")
            if pos > end:
                raise self.bad(f"field {num} at byte {start} runs past the end of its message")
            if num == 0:
                raise self.bad(f"field number 0 at byte {start}")
            spec = schema.get(num)
            if spec is None:
                continue  # a field webjit does not read
            name, kind = spec
            if isinstance(kind, list):
                self.repeated(out.setdefault(name, []), kind[0], wire, value, start)
            else:
                out[name] = self.scalar(kind, wire, value, start)
        return out

    def scalar(self, kind: str | dict, wire: int, value: Any, at: int) -> Any:
        expected = 2 if isinstance(kind, dict) else _WIRE_TYPE[kind]
        if wire != expected:
            raise self.bad(f"field at byte {at} has wire type {wire}, expected {expected}")
        if isinstance(kind, dict):
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise self.bad(f"messages nested more than {MAX_DEPTH} deep at byte {at}")
                return self.message(value[0], value[1], kind)
            finally:
                self.depth -= 1
        if kind == "int":
            return value - (1 << 64) if value >= 1 << 63 else value
        if kind == "uint":
            return value
        if kind == "str":
            try:
                return self.buf[value[0]:value[1]].decode("utf-8")
            except UnicodeDecodeError:
                raise self.bad(f"string at byte {at} is not UTF-8") from None
        if kind == "bytes":
            return self.view[value[0]:value[1]]
        return struct.unpack_from("<f" if kind == "f32" else "<d", self.buf, value[0])[0]

    def repeated(self, items: list, kind: str | dict, wire: int, value: Any, at: int) -> None:
        """Append one occurrence of a repeated field, either one element or a packed run of them."""
        if kind in ("f32", "f64"):  # kept as raw little-endian bytes, one value or a packed run
            size = 4 if kind == "f32" else 8
            if wire != 2 and wire != _WIRE_TYPE[kind]:
                raise self.bad(f"field at byte {at} has wire type {wire}, expected 2 or {_WIRE_TYPE[kind]}")
            if (value[1] - value[0]) % size:
                raise self.bad(f"packed field at byte {at} is not a whole number of {kind} values")
            items.append(self.view[value[0]:value[1]])
        elif wire != 2 or not isinstance(kind, str) or kind in ("str", "bytes"):
            items.append(self.scalar(kind, wire, value, at))
        else:
            pos, end = value
            while pos < end:
                v, pos = self.varint(pos, end)
                items.append(v - (1 << 64) if kind == "int" and v >= 1 << 63 else v)

    # Building the dataclasses --------------------------------------------------------------------------------

    def graph(self, d: dict) -> Graph:
        return Graph(d.get("name", ""), [self.node(n) for n in d.get("node", [])],
                     [self.tensor(t) for t in d.get("initializer", [])],
                     [self.value_info(v) for v in d.get("input", [])],
                     [self.value_info(v) for v in d.get("output", [])],
                     [self.value_info(v) for v in d.get("value_info", [])])

    def node(self, d: dict) -> Node:
        node = Node(d.get("op_type", ""), d.get("name", ""), d.get("domain", ""), d.get("input", []),
                    d.get("output", []))
        node.attributes = [self.attribute(a, node) for a in d.get("attribute", [])]
        return node

    def attribute(self, d: dict, node: Node) -> Attribute:
        name, kind = d.get("name", ""), d.get("type", 0)
        if kind == 0:  # very old files leave the type out: take the field that is there
            kind = next((k for k, f in ATTRIBUTE_FIELDS.items() if d.get(f) not in (None, [])), 0)
        key = ATTRIBUTE_FIELDS.get(kind)
        if key is None:
            raise self.bad(f"attribute '{name}' of node '{node.name or node.op_type}' has unknown type {kind}")
        if key in _UNHANDLED_ATTRIBUTES:
            raise WebjitError(f"{self.label}: attribute '{name}' of node '{node.name or node.op_type}' holds a "
                              f"{key}, which webjit does not read")
        value = d.get(key, [] if key in ("floats", "ints", "strings", "tensors", "graphs") else None)
        if key == "f":
            value = 0.0 if value is None else value
        elif key == "i":
            value = 0 if value is None else value
        elif key == "s":
            value = b"" if value is None else bytes(value)
        elif key == "t":
            value = self.tensor(value or {})
        elif key == "g":
            value = self.graph(value or {})
        elif key == "floats":
            raw = b"".join(value)
            value = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        elif key == "strings":
            value = [bytes(s) for s in value]
        elif key == "tensors":
            value = [self.tensor(t) for t in value]
        elif key == "graphs":
            value = [self.graph(g) for g in value]
        return Attribute(name, kind, value)

    def value_info(self, d: dict) -> ValueInfo:
        tt = d.get("type", {}).get("tensor_type")
        if tt is None:
            return ValueInfo(d.get("name", ""), None, None)
        shape = None
        if "shape" in tt:
            shape = tuple(x.get("dim_value", x.get("dim_param")) for x in tt["shape"].get("dim", []))
        return ValueInfo(d.get("name", ""), tt.get("elem_type", 0), shape)

    def tensor(self, d: dict) -> Tensor:
        name, elem_type = d.get("name", ""), d.get("data_type", 0)
        if elem_type not in DTYPES:
            raise self.bad(f"tensor '{name}' has unknown data type {elem_type}")
        dtype, fmt = DTYPES[elem_type]
        dims = tuple(d.get("dims", []))
        if dtype == "object":
            return Tensor(name, "object", dims, b"", [bytes(s) for s in d.get("string_data", [])])
        if d.get("data_location") == 1:
            data = self.external(name, d.get("external_data", []))
        elif "raw_data" in d:
            data = d["raw_data"]
        elif fmt is None:  # float_data / double_data: packed runs are the little-endian bytes already
            chunks = d.get("float_data" if dtype in ("float32", "complex64") else "double_data", [])
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        else:
            values = d.get({"q": "int64_data", "I": "uint64_data", "Q": "uint64_data"}.get(fmt, "int32_data"), [])
            try:
                data = struct.pack(f"<{len(values)}{fmt}", *values)
            except struct.error:
                raise self.bad(f"tensor '{name}' holds a value out of range for {dtype}") from None
        return Tensor(name, dtype, dims, data)

    def external(self, name: str, entries: list[dict]) -> memoryview:
        info = {e.get("key", ""): e.get("value", "") for e in entries}
        location = info.get("location", "")
        if self.locations is not None:
            self.locations.append(location)
            return memoryview(b"")
        if self.folder is None:
            raise WebjitError(f"{self.label}: tensor '{name}' needs external data file '{location}'; "
                              f"give the folder it is in")
        try:
            offset, length = int(info.get("offset") or 0), info.get("length")
            length = None if length in (None, "") else int(length)
        except ValueError:
            raise self.bad(f"tensor '{name}' has a bad external data offset or length") from None
        folder = self.folder.resolve()
        file = (folder / location).resolve()
        if location and folder not in file.parents:
            raise WebjitError(f"{self.label}: tensor '{name}' names external data file '{location}', which is "
                              f"outside the model's folder; webjit reads external data only from inside it")
        if not location or not file.is_file():
            raise WebjitError(f"{self.label}: tensor '{name}' needs external data file '{location}', which is missing")
        if file not in self.files:
            self.files[file] = memoryview(file.read_bytes())
        whole = self.files[file]
        end = len(whole) if length is None else offset + length
        if offset < 0 or end > len(whole):
            raise WebjitError(f"{self.label}: external data file '{location}' is truncated (tensor '{name}')")
        return whole[offset:end]
