"""What a student's function returned, as JSON that the grader can read without trusting it.

The kernel encodes the values a student's code produced (arrays, numbers, tuples,
dicts); the grading process decodes them. Decoding never runs code from the data: no
pickle, arrays only of plain numeric dtypes, sizes checked against shapes, nesting
bounded. Anything else becomes an :class:`Opaque` that names its type.
"""
import base64
import dataclasses
import math

import numpy as np

MIME = "application/vnd.nn-course.check-record+json"  # the output type of a recorded check
MAX_ELEMENTS = 1_000_000   # larger arrays are recorded by shape only
MAX_ITEMS = 64             # items of a tuple, list or dict
MAX_DEPTH = 6
_DTYPES = {np.dtype(t).str: np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128)}


class RecordError(ValueError):
    """The recorded data is malformed (tampered with, or cut off)."""


@dataclasses.dataclass(frozen=True)
class Opaque:
    """A value that is not data we compare: its type (and shape/dtype for arrays) only."""

    type: str
    shape: tuple = None
    dtype: str = None
    note: str = ""


# ---------------------------------------------------------------- kernel side


def encode(value, depth=0):
    """A JSON-able description of ``value``."""
    if depth > MAX_DEPTH:
        return {"opaque": type(value).__name__, "note": "nested too deeply"}
    if value is None or type(value) is bool:
        return {"py": value}
    if type(value) is str:
        return {"str": value[:1000]}
    if type(value) is int:
        return {"py": value} if abs(value) < 2 ** 63 else {"opaque": "int", "note": "too large"}
    if type(value) is float:
        return {"py": value} if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.generic) and value.dtype.str in _DTYPES:
        return {"scalar": _array(np.asarray(value))}
    if type(value) is np.ndarray:
        if value.dtype.str not in _DTYPES:
            return {"opaque": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
        if value.size > MAX_ELEMENTS:
            return {"opaque": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype), "note": "too large"}
        return {"array": _array(value)}
    if type(value) in (tuple, list):
        kind = "tuple" if type(value) is tuple else "list"
        return {kind: [encode(v, depth + 1) for v in value[:MAX_ITEMS]], "length": len(value)}
    if type(value) is dict:
        items = list(value.items())[:MAX_ITEMS]
        return {"dict": [[str(k), encode(v, depth + 1)] for k, v in items]}
    return {"opaque": type(value).__name__}


def _array(a):
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


# ---------------------------------------------------------------- grader side


def decode(node, depth=0):
    """The value described by ``encode``; raises RecordError on anything malformed."""
    if depth > MAX_DEPTH + 1 or not isinstance(node, dict) or len(node) > 3:
        raise RecordError("malformed value")
    if "py" in node:
        value = node["py"]
        if value is not None and type(value) not in (bool, int, float):
            raise RecordError("malformed number")
        return value
    if "str" in node:
        return _typed(node["str"], str)
    if "float" in node:
        return float(_typed(node["float"], str)[:20])
    if "scalar" in node:
        return _decode_array(node["scalar"])[()]
    if "array" in node:
        return _decode_array(node["array"])
    if "tuple" in node or "list" in node:
        items = [decode(v, depth + 1) for v in _typed(node.get("tuple", node.get("list")), list)[:MAX_ITEMS]]
        return tuple(items) if "tuple" in node else items
    if "dict" in node:
        pairs = _typed(node["dict"], list)[:MAX_ITEMS]
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise RecordError("malformed dict")
        return {_typed(k, str): decode(v, depth + 1) for k, v in pairs}
    if "opaque" in node:
        shape = node.get("shape")
        return Opaque(str(node["opaque"])[:60], tuple(int(s) for s in shape) if isinstance(shape, list) else None,
                      str(node["dtype"])[:20] if "dtype" in node else None, str(node.get("note", ""))[:60])
    raise RecordError("malformed value")


def _typed(value, kind):
    if not isinstance(value, kind):
        raise RecordError(f"expected {kind.__name__}")
    return value


def _decode_array(node):
    node = _typed(node, dict)
    dtype = _DTYPES.get(node.get("dtype"))
    shape = _typed(node.get("shape"), list)
    if dtype is None or len(shape) > 8 or not all(type(s) is int and 0 <= s <= MAX_ELEMENTS for s in shape):
        raise RecordError("malformed array")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise RecordError("array too large")
    try:
        raw = base64.b64decode(_typed(node.get("data"), str), validate=True)
    except (ValueError, TypeError) as exc:
        raise RecordError("malformed array data") from exc
    if len(raw) != count * dtype.itemsize:
        raise RecordError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
