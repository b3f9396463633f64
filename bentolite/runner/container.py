"""Batch containers (concatenate / split along ``batch_dim``) and the pickle-5 payload codec.

Container types are recognised by qualified type name, so pandas, PIL and torch are only
imported once a value of their type is actually seen.
"""
from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, Sequence

from ..exceptions import BentoMLException

__all__ = [
    "batch_size_of",
    "is_batch_value",
    "concat_batches",
    "split_batch",
    "check_batch_length",
    "encode_payload",
    "decode_payload",
]


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


_SIMPLE_KINDS: dict[type, str | None] = {
    list: "list", str: None, bytes: None, int: None, float: None, bool: None, dict: None,
    type(None): None, tuple: None,
}


def _kind(value: Any) -> str | None:
    """The container kind of ``value`` or None if it is not a batchable value."""
    cls = type(value)
    if cls in _SIMPLE_KINDS:
        return _SIMPLE_KINDS[cls]
    if isinstance(value, list):
        return "list"
    name = _type_name(value)
    if name == "numpy.ndarray":
        return "ndarray" if value.ndim > 0 else None
    if name in ("pandas.DataFrame", "pandas.core.frame.DataFrame"):
        return "dataframe"
    if name in ("pandas.Series", "pandas.core.series.Series"):
        return "series"
    if name == "torch.Tensor" or (name.startswith("torch.") and _is_torch_tensor(value)):
        return "tensor" if value.dim() > 0 else None
    return None


def _is_torch_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def is_batch_value(value: Any) -> bool:
    """Whether ``value`` is a type the batcher can concatenate and split."""
    return _kind(value) is not None


def batch_size_of(value: Any, batch_dim: int = 0) -> int:
    """Number of items of ``value`` along ``batch_dim``."""
    kind = _kind(value)
    if kind == "list" or kind == "series":
        return len(value)
    if kind == "dataframe":
        return len(value) if batch_dim == 0 else value.shape[1]
    if kind in ("ndarray", "tensor"):
        return int(value.shape[batch_dim])
    raise TypeError(f"cannot take the batch size of a {type(value).__name__}")


def concat_batches(values: Sequence[Any], batch_dim: int = 0) -> Any:
    """Join same-kind batches along ``batch_dim``."""
    if len(values) == 1:
        return values[0]
    kind = _kind(values[0])
    if kind == "list":
        out: list[Any] = []
        for v in values:
            out.extend(v)
        return out
    if kind == "ndarray":
        import numpy as np

        return np.concatenate(values, axis=batch_dim)
    if kind in ("dataframe", "series"):
        import pandas as pd

        if batch_dim != 0:
            return pd.concat(values, axis=1)
        return pd.concat(values, axis=0, ignore_index=True)
    if kind == "tensor":
        import torch

        return torch.cat(list(values), dim=batch_dim)
    raise TypeError(f"cannot batch values of type {type(values[0]).__name__}")


def single_array_rows(args: tuple[Any, ...], kwargs: dict[str, Any], batch_dim: int
                      ) -> int | None:
    """Items of a call whose only argument is one numpy array; None for any other call."""
    if kwargs or len(args) != 1:
        return None
    numpy = sys.modules.get("numpy")
    value = args[0]
    if numpy is None or type(value) is not numpy.ndarray or not 0 <= batch_dim < value.ndim:
        return None
    return int(value.shape[batch_dim])


def array_layout(array: Any, batch_dim: int) -> tuple[Any, ...]:
    """What numpy arrays must share to be joined along ``batch_dim``: dtype and other dims."""
    shape = array.shape
    return array.dtype.str, shape[:batch_dim] + shape[batch_dim + 1:]


def join_batches(values: Sequence[Any], batch_dim: int = 0) -> Any:
    """Join the results of the parts of one request: ``split_batch`` the other way round."""
    first = values[0]
    if isinstance(first, tuple):
        return tuple(join_batches([v[i] for v in values], batch_dim) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: join_batches([v[k] for v in values], batch_dim) for k in first}
    return concat_batches(values, batch_dim)


def split_rows(value: Any, rows: int, batch_dim: int = 0) -> tuple[Any, Any]:
    """The first ``rows`` items of batch value ``value`` and the rest (views where possible)."""
    head, tail = _split_one(value, [rows, batch_size_of(value, batch_dim) - rows], batch_dim)
    return head, tail


def _split_one(value: Any, sizes: Sequence[int], batch_dim: int) -> list[Any]:
    kind = _kind(value)
    if kind is None:
        raise TypeError(f"a {type(value).__name__} cannot be split into per-request results")
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    if kind == "list":
        return [value[offsets[i]:offsets[i + 1]] for i in range(len(sizes))]
    if kind == "ndarray":
        import numpy as np

        return np.split(value, offsets[1:-1], axis=batch_dim)
    if kind in ("dataframe", "series"):
        if batch_dim != 0:
            return [value.iloc[:, offsets[i]:offsets[i + 1]] for i in range(len(sizes))]
        return [
            value.iloc[offsets[i]:offsets[i + 1]].reset_index(drop=True) for i in range(len(sizes))
        ]
    if kind == "tensor":
        return list(value.split(list(sizes), dim=batch_dim))
    raise AssertionError(kind)


def check_batch_length(value: Any, expected: int, batch_dim: int, method: str) -> None:
    """Raise BentoMLException naming ``method`` unless ``value`` holds ``expected`` items."""
    if isinstance(value, tuple):
        for v in value:
            check_batch_length(v, expected, batch_dim, method)
        return
    if isinstance(value, dict):
        for v in value.values():
            check_batch_length(v, expected, batch_dim, method)
        return
    if not is_batch_value(value):
        raise BentoMLException(
            f"batchable method {method!r} returned a {type(value).__name__}; it must return a "
            "list, numpy array, pandas object or torch tensor (or a tuple/dict of them) with one "
            "item per input item"
        )
    actual = batch_size_of(value, batch_dim)
    if actual != expected:
        raise BentoMLException(
            f"batchable method {method!r} returned {actual} items along batch_dim {batch_dim} "
            f"for a batch of {expected} input items; expected {expected}"
        )


def split_batch(value: Any, sizes: Sequence[int], batch_dim: int, method: str) -> list[Any]:
    """Split a batched result into one result per request (``sizes`` items each).

    Tuples and dicts of batch values (multi-output methods) are split element-wise.
    Raises BentoMLException naming ``method`` if the result length does not match.
    """
    check_batch_length(value, sum(sizes), batch_dim, method)
    return _split(value, sizes, batch_dim)


def _split(value: Any, sizes: Sequence[int], batch_dim: int) -> list[Any]:
    if isinstance(value, tuple):
        parts = [_split(v, sizes, batch_dim) for v in value]
        return [tuple(p[i] for p in parts) for i in range(len(sizes))]
    if isinstance(value, dict):
        split = {k: _split(v, sizes, batch_dim) for k, v in value.items()}
        return [{k: split[k][i] for k in split} for i in range(len(sizes))]
    return _split_one(value, sizes, batch_dim)


# --- payload codec -------------------------------------------------------------------

#: Buffers smaller than this travel inside the main pickle (fewer pieces, no per-buffer cost).
OUT_OF_BAND_MIN_BYTES = 16 * 1024


def _plain_array(value: Any) -> bool:
    """A C-contiguous, non-object numpy array: it can travel as raw bytes plus a header."""
    return (type(value).__name__ == "ndarray" and type(value).__module__ == "numpy"
            and not value.dtype.hasobject and value.flags.c_contiguous)


# Fast path for the commonest payloads (one array argument; an array result): a short
# header and the raw buffer, skipping pickle. Pickle streams start with b"\x80", so the
# leading zero byte cannot be confused with one.
_ARRAY_RESULT, _ARRAY_CALL = b"\x00NA", b"\x00NC"


# Calls and results mostly repeat a few (dtype, shape) pairs: headers and parsed headers are
# memoised (bounded) so the per-call cost is one dict lookup each way.
_MAX_CACHED_HEADERS = 256
_headers: dict[tuple[bytes, Any, tuple[int, ...]], bytes] = {}
_parsed_headers: dict[bytes, tuple[Any, tuple[int, ...]]] = {}


def _array_header(tag: bytes, array: Any) -> bytes:
    key = (tag, array.dtype, array.shape)
    header = _headers.get(key)
    if header is None:
        dtype = array.dtype.str.encode()
        header = b"".join([tag, bytes((len(dtype),)), dtype, bytes((array.ndim,)),
                           struct.pack(f"!{array.ndim}Q", *array.shape)])
        if len(_headers) < _MAX_CACHED_HEADERS:
            _headers[key] = header
    return header


def _raw_bytes(array: Any) -> memoryview:
    return memoryview(array.reshape(-1).view("u1"))


def _array_from(header: Any, data: Any) -> Any:
    import numpy as np

    header = bytes(header)
    parsed = _parsed_headers.get(header)
    if parsed is None:
        dtype_len = header[3]
        dtype = np.dtype(header[4:4 + dtype_len].decode())
        ndim = header[4 + dtype_len]
        parsed = (dtype, struct.unpack_from(f"!{ndim}Q", header, 5 + dtype_len))
        if len(_parsed_headers) < _MAX_CACHED_HEADERS:
            _parsed_headers[header] = parsed
    return np.frombuffer(data, dtype=parsed[0]).reshape(parsed[1])


def encode_payload(obj: Any) -> list[memoryview | bytes]:
    """Pickle ``obj`` (protocol 5); returns ``[main_pickle, *out_of_band_buffers]``.

    Large contiguous buffers (numpy arrays, pandas blocks) go out of band, without copies.
    """
    if _plain_array(obj):
        return [_array_header(_ARRAY_RESULT, obj), _raw_bytes(obj)]
    if (type(obj) is tuple and len(obj) == 2 and type(obj[0]) is tuple and len(obj[0]) == 1
            and not obj[1] and type(obj[1]) is dict and _plain_array(obj[0][0])):
        array = obj[0][0]
        return [_array_header(_ARRAY_CALL, array), _raw_bytes(array)]
    parts: list[memoryview | bytes] = [b""]

    def out_of_band(buf: pickle.PickleBuffer) -> bool:
        try:
            raw = buf.raw()
        except BufferError:  # non-contiguous: pickled in band (one copy)
            return True
        if raw.nbytes < OUT_OF_BAND_MIN_BYTES:
            return True
        parts.append(raw)
        return False

    parts[0] = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    return parts


def decode_payload(parts: Sequence[Any]) -> Any:
    """Inverse of ``encode_payload`` (buffers are used in place, without copies)."""
    head = parts[0]
    if len(head) > 3 and head[0] == 0:
        tag = bytes(head[:3])
        if tag == _ARRAY_RESULT:
            return _array_from(head, parts[1])
        if tag == _ARRAY_CALL:
            return ((_array_from(head, parts[1]),), {})
    return pickle.loads(head, buffers=parts[1:])
