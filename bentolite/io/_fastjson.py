"""Large JSON bodies with float tensors, read by simdjson without a Python object per number.

A 3 MB 1x3x224x224 tensor takes about 5 ms this way, against 10 ms for msgspec plus
``np.array``. These readers only ever say yes or None: None sends the body down the standard
path (``parse_json``), which reads everything else and words every error, so a body gets the
same result either way. simdjson flattens nested lists whatever their lengths, so shapes are
checked here: every list at one depth is as long as the others, and the body holds no list
besides those counted (its ``[`` bytes; one inside a string also sends it the standard way).
"""
from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Collection, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["FAST_JSON_BYTES", "float_array", "object_with_float_arrays"]

#: bodies from this size up are tried here first
FAST_JSON_BYTES = 32 * 1024

#: what simdjson raises for bad JSON, a non-number in a float buffer or a too-large number
_REFUSED = (ValueError, TypeError, RuntimeError, OverflowError, KeyError)


_parser_lock = threading.Lock()
_parser: Any = None


@contextlib.contextmanager
def _parsing() -> Iterator[tuple[Any, Any]]:
    """``(simdjson module, parser)`` for one body, or ``(None, None)`` without simdjson.

    One parser, kept: a fresh one per body allocates (and page-faults) about three times the
    body's size each time, half the time a 3 MB body takes. A parser cannot parse again while
    values of its last document are alive, so callers keep them inside the ``with``. While
    another thread holds the kept one, a body gets a fresh parser rather than wait: a body
    decoded on the event loop must not stall it behind a large one in the decode pool.
    """
    global _parser
    try:
        import simdjson
    except ImportError:  # pragma: no cover - a dependency; the standard path still works
        yield None, None
        return
    if not _parser_lock.acquire(blocking=False):
        yield simdjson, simdjson.Parser()
        return
    try:
        if _parser is None:
            _parser = simdjson.Parser()
        yield simdjson, _parser
    except RuntimeError:  # a value still alive (or a number it cannot hold): start afresh
        _parser = None
        raise
    finally:
        _parser_lock.release()


def _array(node: Any, simdjson: Any) -> tuple[np.ndarray[Any, Any], int] | None:
    """A rectangular all-number simdjson array as float64, and how many lists it holds."""
    import numpy as np

    shape: list[int] = []
    first: Any = node
    while isinstance(first, simdjson.Array) and len(first):
        shape.append(len(first))
        first = first[0]
    if not shape or isinstance(first, simdjson.Array):
        return None  # not an array, or an empty one somewhere
    level, lists = [node], 1
    for size in shape[1:]:
        children = [child for parent in level for child in parent]
        if not all(isinstance(c, simdjson.Array) and len(c) == size for c in children):
            return None
        level = children
        lists += len(children)
    flat = np.frombuffer(node.as_buffer(of_type="d"), dtype=np.float64)
    if flat.size != int(np.prod(shape)):
        return None
    return flat.reshape(shape), lists


def _brackets(body: bytes) -> int:
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(body, np.uint8) == ord("[")))  # 5x bytes.count


def float_array(body: bytes) -> np.ndarray[Any, Any] | None:
    """The body as a float64 array, if it is a rectangular JSON array of numbers."""
    try:
        with _parsing() as (simdjson, parser):
            if simdjson is None:
                return None
            found = _array(parser.parse(body), simdjson)
    except _REFUSED:
        return None
    if found is None or _brackets(body) != found[1]:
        return None
    return found[0]


def _lists_in(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(_lists_in(v) for v in value)
    if isinstance(value, dict):
        return sum(_lists_in(v) for v in value.values())
    return 0


def object_with_float_arrays(body: bytes, array_keys: Collection[str]) -> dict[str, Any] | None:
    """The body as a dict, if it is a JSON object: the values under ``array_keys`` that are
    rectangular arrays of numbers as float64 arrays, every other value as Python values."""
    try:
        with _parsing() as (simdjson, parser):
            if simdjson is None:
                return None
            data, lists = _object(parser.parse(body), array_keys, simdjson)
    except _REFUSED:
        return None
    return data if data is not None and _brackets(body) == lists else None


def _object(doc: Any, array_keys: Collection[str], simdjson: Any
            ) -> tuple[dict[str, Any] | None, int]:
    if not isinstance(doc, simdjson.Object):
        return None, 0
    keys = list(doc.keys())
    if len(set(keys)) != len(keys):
        return None, 0  # a repeated key: the standard decoder's last-one-wins applies
    data: dict[str, Any] = {}
    lists = 0
    for key in keys:
        value = doc[key]
        if key in array_keys and isinstance(value, simdjson.Array):
            found = _array(value, simdjson)
            if found is None:
                return None, 0
            data[key], count = found
        else:
            if isinstance(value, simdjson.Array):
                value = value.as_list()
            elif isinstance(value, simdjson.Object):
                value = value.as_dict()
            data[key], count = value, _lists_in(value)
        lists += count
    return data, lists
