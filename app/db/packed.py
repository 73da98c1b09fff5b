"""Per-token arrays stored as packed little-endian bytes, one dtype per column, never pickled.

A scoring run produces 10^5–10^6 tokens per second on a GPU; one row per token would make the
database the bottleneck, so each (run, document) row holds one blob per field.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator


def stored_dtype(name: str | np.dtype) -> np.dtype:
    """The on-disk dtype for a dtype name: always little-endian, whatever the machine's byte order."""
    return np.dtype(name).newbyteorder("<")


INT32 = stored_dtype("int32")
FLOAT32 = stored_dtype("float32")


def pack(values, dtype: np.dtype) -> bytes:
    """Bytes of `values` as `dtype` (little-endian). Refuses values that would not round-trip:
    NaN/inf (or floats beyond float32), fractional or non-numeric values for integer columns, and
    integers outside the column's range."""
    array = np.asarray(values)
    if array.size and dtype.kind == "i":
        if array.dtype.kind not in "biu":
            raise ValueError(f"refusing to store {array.dtype} values in an {dtype} column")
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise ValueError(f"integer values outside {dtype} range")
    if array.size and dtype.kind == "f" and array.dtype.kind not in "biuf":
        raise ValueError(f"refusing to store {array.dtype} values in a {dtype} column")
    with np.errstate(over="ignore", invalid="ignore"):
        packed = np.ascontiguousarray(array, dtype=dtype)
    if dtype.kind == "f" and packed.size and not np.isfinite(packed).all():
        raise ValueError("refusing to store NaN or infinite values (or values beyond float32 range)")
    return packed.tobytes()


def unpack(blob: bytes | None, dtype: np.dtype) -> np.ndarray:
    """A read-only view of the stored bytes; no copy."""
    if blob is None:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(blob, dtype=dtype)


class PackedArray(TypeDecorator):
    """A 1-D numpy array of a fixed dtype stored as bytes (BLOB on SQLite, BYTEA on PostgreSQL)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, dtype: str | np.dtype):
        super().__init__()
        self.dtype = stored_dtype(dtype)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        return pack(value, self.dtype)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return unpack(bytes(value), self.dtype)
