"""The framed protocol of the local hop (API worker -> runner worker over a Unix socket).

A frame is ``header | buffer lengths | meta | buffers``:

* header ``!IBQIH``: length of the rest of the frame, kind, request id, meta length,
  number of buffers;
* one ``!Q`` length per buffer;
* ``meta``: a small JSON object (method name, error details, and ``trace``: an optional
  W3C trace-context dict such as ``{"traceparent": "..."}``);
* the buffers: the main pickle and its out-of-band buffers (see ``container``).

Large buffers may instead lie in a shared-memory ring of the sender's (see ``shm``): the
frame then carries them as empty buffers and ``meta["shm"]`` says where each one lies, as
``[index, position, length]``; the receiving ``FrameProtocol`` puts them back before anyone
sees the frame. SHM frames offer a ring (``{"fd", "size"}``) and answer an offer
(``{"ok": bool}``); until the answer, every buffer travels in the socket.

Many calls share one connection; replies carry the request id of their call.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import Any, Callable, Sequence

from . import shm

__all__ = [
    "CALL", "RESULT", "ERROR", "CANCEL", "PING", "PONG", "CHUNK", "SHM",
    "Frame", "FrameProtocol", "pack_frame", "write_frame", "parse_frame",
    "error_meta", "error_from_meta", "ping_worker", "socket_path",
]

CALL, RESULT, ERROR, CANCEL, PING, PONG = 1, 2, 3, 4, 5, 6
#: one item of a streamed call (``meta["stream"]`` on its CALL); a RESULT frame ends the stream
CHUNK = 7
#: a shared-memory ring offered, or the answer to an offer (handled by ``FrameProtocol``)
SHM = 8

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!IBQIH")
_PREFIX = struct.Struct("!I")
_BIG_FRAME = 64 * 1024
_SEND_BUFFER_BYTES = 4 * 1024 * 1024
#: Frames larger than this are refused (protects a worker from a garbage length prefix).
MAX_FRAME_BYTES = 4 * 1024 * 1024 * 1024 - 1


class Frame:
    __slots__ = ("kind", "request_id", "meta", "buffers")

    def __init__(self, kind: int, request_id: int, meta: dict[str, Any], buffers: list[Any]):
        self.kind = kind
        self.request_id = request_id
        self.meta = meta
        self.buffers = buffers


def pack_frame(
    kind: int, request_id: int, meta: dict[str, Any] | None = None,
    buffers: Sequence[Any] = (),
) -> list[Any]:
    """The pieces of one frame, ready for ``transport.writelines``."""
    meta_bytes = _encode_meta(meta) if meta else b""
    sizes = [_size(b) for b in buffers]
    lengths = _lengths_struct(len(sizes)).pack(*sizes)
    rest = _HEADER.size - _PREFIX.size + len(lengths) + len(meta_bytes) + sum(sizes)
    if rest > MAX_FRAME_BYTES:
        raise ValueError(f"a runner call payload of {rest} bytes exceeds the 4 GiB frame limit")
    header = _HEADER.pack(rest, kind, request_id, len(meta_bytes), len(sizes))
    return [header + lengths + meta_bytes, *buffers]


_LENGTHS = [struct.Struct(f"!{n}Q") for n in range(8)]


def _lengths_struct(count: int) -> struct.Struct:
    return _LENGTHS[count] if count < len(_LENGTHS) else struct.Struct(f"!{count}Q")


_meta_cache: dict[Any, bytes] = {}
#: meta keys whose values repeat from call to call (a method name, flags): such metas are
#: encoded and parsed once; others (error messages, ring positions, trace ids) vary
_REPEATING_META = frozenset({"m", "p", "stream"})
_meta_parsed: dict[bytes, dict[str, Any]] = {}


def _encode_meta(meta: dict[str, Any]) -> bytes:
    if meta.keys() <= _REPEATING_META:  # the common CALL meta: encoded once
        key = tuple(meta.items())
        cached = _meta_cache.get(key)
        if cached is None:
            cached = json.dumps(meta, separators=(",", ":")).encode()
            if len(_meta_cache) < 1024:
                _meta_cache[key] = cached
        return cached
    return json.dumps(meta, separators=(",", ":")).encode()


def _decode_meta(raw: bytes) -> dict[str, Any]:
    cached = _meta_parsed.get(raw)
    if cached is not None:
        return cached
    meta = json.loads(raw)
    if len(raw) < 80 and len(_meta_parsed) < 1024 and meta.keys() <= _REPEATING_META:
        _meta_parsed[raw] = meta  # read-only use: callers never mutate meta
    return meta


def write_frame(transport: asyncio.BaseTransport, pieces: list[Any]) -> None:
    """Write a frame; small frames go as one write, large buffers without joining."""
    if len(pieces) == 1:
        transport.write(pieces[0])  # type: ignore[attr-defined]
    elif _nbytes(pieces) <= _BIG_FRAME:
        transport.write(b"".join(pieces))  # type: ignore[attr-defined]
    else:
        for piece in pieces:
            transport.write(piece)  # type: ignore[attr-defined]


class FrameProtocol(asyncio.BufferedProtocol):
    """Parses frames off a stream and hands each to ``on_frame``.

    Small frames are read into one reused buffer and copied out; a frame larger than that
    buffer is read straight into a buffer of its own (one copy, from the kernel), which the
    arrays decoded from it then use.
    """

    def __init__(self, on_frame: Callable[[Frame], None]) -> None:
        self._on_frame = on_frame
        self._head = bytearray(_BIG_FRAME)
        self._head_len = 0
        self._frame: bytearray | None = None  # a big frame being read, and how much of it
        self._frame_len = 0
        self._out: list[Any] = []
        self._flush_scheduled = False
        self.transport: asyncio.Transport | None = None
        self._ring_out: shm.OutRing | None = None
        self._ring_state = "off"  # for large buffers we send: new -> offered -> ready, or off
        self._ring_in: shm.InRing | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a big frame goes out in one write, not 200 KiB at a time
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER_BYTES)
            except OSError:  # capped by net.core.wmem_max: the kernel's own size then
                pass
        if shm.supported(sock):
            self._ring_state = "new"

    def connection_lost(self, exc: Exception | None) -> None:
        self._ring_state = "off"
        for ring in (self._ring_out, self._ring_in):
            if ring is not None:
                ring.close()
        self._ring_out = self._ring_in = None

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._frame is not None:
            return memoryview(self._frame)[self._frame_len:]
        return memoryview(self._head)[self._head_len:]

    def buffer_updated(self, nbytes: int) -> None:
        if self._frame is not None:
            self._frame_len += nbytes
            if self._frame_len == len(self._frame):
                frame, self._frame = self._frame, None
                self._deliver(parse_frame(frame))
            return
        head = self._head
        filled = self._head_len + nbytes
        pos = 0
        while filled - pos >= _HEADER.size:
            (rest,) = _PREFIX.unpack_from(head, pos)
            size = _PREFIX.size + rest
            if pos + size <= filled:
                # a bytearray copy: buffers decoded from it are writable and outlive the head
                self._deliver(parse_frame(head[pos:pos + size]))
                pos += size
            elif size > len(head):  # too big for the head: read the rest into its own buffer
                frame = bytearray(size)
                have = filled - pos
                frame[:have] = head[pos:filled]
                self._frame, self._frame_len = frame, have
                self._head_len = 0
                return
            else:
                break
        if pos:  # keep the start of the next frame at the front
            head[:filled - pos] = head[pos:filled]
        self._head_len = filled - pos

    def _deliver(self, frame: Frame) -> None:
        if frame.kind == SHM:
            self._on_ring_frame(frame)
            return
        if "shm" in frame.meta:
            ring = self._ring_in
            if ring is None:
                raise ValueError("a frame refers to a shared-memory ring never offered")
            for index, pos, length in frame.meta["shm"]:
                frame.buffers[index] = ring.take(pos, length)
        self._on_frame(frame)

    def send(self, kind: int, request_id: int, meta: dict[str, Any] | None = None,
             buffers: Sequence[Any] = ()) -> None:
        """Send a frame (see ``pack_frame``): large buffers through our shared-memory ring when
        the peer has mapped it; small frames queued in one loop iteration go out in one write."""
        if self.transport is None or self.transport.is_closing():
            return
        if buffers and self._ring_state != "off":
            meta, buffers = self._via_ring(meta, buffers)
        pieces = pack_frame(kind, request_id, meta, buffers)
        if len(pieces) > 1 and _frame_bytes(pieces) > _BIG_FRAME:
            self._flush()
            write_frame(self.transport, pieces)  # big buffers: no join, no copy
            return
        self._queue(pieces)

    def _queue(self, pieces: list[Any]) -> None:
        self._out.extend(pieces)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    # --- shared memory for large buffers (see ``shm``) -------------------------------

    def ring_stats(self) -> dict[str, Any]:
        """Where our ring for large buffers stands: its state, bytes written and consumed."""
        ring = self._ring_out
        return {"state": self._ring_state, "written": ring.written if ring else 0,
                "consumed": ring.consumed if ring else 0, "peer_ring": self._ring_in is not None}

    def _via_ring(self, meta: dict[str, Any] | None, buffers: Sequence[Any]
                  ) -> tuple[dict[str, Any] | None, Sequence[Any]]:
        """``meta`` and ``buffers`` with the large buffers moved into our ring, as far as it
        has room (``meta["shm"]`` says where each one went)."""
        sizes = [_size(b) for b in buffers]
        big = [i for i, n in enumerate(sizes) if n >= shm.MIN_BUFFER_BYTES]
        if not big or sum(sizes) > MAX_FRAME_BYTES:  # too big: pack_frame refuses it, and
            return meta, buffers  # nothing may be left in the ring that no frame points to
        ring = self._ring_out
        if self._ring_state != "ready" or ring is None:
            if self._ring_state == "new":
                self._offer_ring()
            return meta, buffers
        moved = list(buffers)
        refs = []
        for index in big:
            view = memoryview(moved[index])
            if view.c_contiguous:
                pos = ring.put(view)
                if pos is not None:
                    refs.append([index, pos, view.nbytes])
                    moved[index] = b""
        if not refs:
            return meta, buffers
        meta = dict(meta) if meta else {}  # a copy: the caller's may be reused
        meta["shm"] = refs
        return meta, moved

    def _offer_ring(self) -> None:
        try:
            self._ring_out = shm.OutRing()
        except OSError as e:  # e.g. memory limits: the socket it is
            logger.debug("no shared-memory ring for large frames: %s", e)
            self._ring_state = "off"
            return
        self._ring_state = "offered"
        self._queue(pack_frame(SHM, 0, {"fd": self._ring_out.fd, "size": self._ring_out.size}))

    def _on_ring_frame(self, frame: Frame) -> None:
        meta = frame.meta
        if "fd" in meta:  # the peer offers its ring
            sock = self.transport.get_extra_info("socket") if self.transport else None
            try:
                if not shm.supported(sock):
                    raise OSError("shared memory is off here")
                ring = shm.InRing(shm.peer_pid(sock), int(meta["fd"]), int(meta["size"]))
            except (OSError, ValueError, KeyError, TypeError) as e:  # refused: the socket it is
                self._queue(pack_frame(SHM, 0, {"ok": False, "error": repr(e)}))
                return
            if self._ring_in is not None:
                self._ring_in.close()
            self._ring_in = ring
            self._queue(pack_frame(SHM, 0, {"ok": True}))
        elif self._ring_state == "offered":
            if meta.get("ok"):
                self._ring_state = "ready"
                return
            logger.debug("the peer cannot map our shared-memory ring: %s", meta.get("error"))
            self._ring_state = "off"
            if self._ring_out is not None:
                self._ring_out.close()
                self._ring_out = None


def _frame_bytes(pieces: list[Any]) -> int:
    """The size of a frame from ``pack_frame``, as its header says."""
    return _PREFIX.size + _PREFIX.unpack_from(pieces[0])[0]


def _size(piece: Any) -> int:
    return len(piece) if isinstance(piece, bytes) else memoryview(piece).nbytes


def _nbytes(pieces: list[Any]) -> int:
    return sum(map(_size, pieces))


def parse_frame(data: bytearray) -> Frame:
    """Parse one whole frame (length prefix included)."""
    _, kind, request_id, meta_len, n_buffers = _HEADER.unpack_from(data, 0)
    pos = _HEADER.size
    sizes = _lengths_struct(n_buffers).unpack_from(data, pos)
    pos += 8 * n_buffers
    meta = _decode_meta(bytes(data[pos:pos + meta_len])) if meta_len else {}
    pos += meta_len
    view = memoryview(data)
    buffers = []
    for size in sizes:
        buffers.append(view[pos:pos + size])
        pos += size
    return Frame(kind, request_id, meta, buffers)


def socket_path(address: str) -> str:
    """The file path of a worker's Unix socket address (``unix://``/``file://`` or a path)."""
    for prefix in ("unix://", "file://"):
        if address.startswith(prefix):
            return address[len(prefix):]
    return address


class _Ping(FrameProtocol):
    def __init__(self, answered: asyncio.Future[bool]) -> None:
        super().__init__(self._on_pong)
        self._answered = answered

    def _on_pong(self, frame: Frame) -> None:
        if not self._answered.done():
            self._answered.set_result(frame.kind == PONG)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._answered.done():
            self._answered.set_result(False)


async def ping_worker(address: str, timeout_s: float = 1.0) -> bool:
    """Whether a runner worker answers a PING on ``address`` within ``timeout_s``.

    Here, not with the runner client, so the supervisor can ask without importing it."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bool] = loop.create_future()
    try:
        transport, proto = await asyncio.wait_for(
            loop.create_unix_connection(lambda: _Ping(answered), socket_path(address)), timeout_s)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        proto.send(PING, 1)
        return await asyncio.wait_for(answered, timeout_s)
    except asyncio.TimeoutError:
        return False
    finally:
        transport.close()


# --- errors across the hop -----------------------------------------------------------

def error_meta(exc: BaseException) -> dict[str, Any]:
    """The meta of an ERROR frame: type, module and message of ``exc``."""
    cls = type(exc)
    meta: dict[str, Any] = {
        "type": cls.__name__,
        "module": cls.__module__,
        "message": getattr(exc, "message", None) or str(exc),
    }
    field = getattr(exc, "field", None)
    if isinstance(field, str):
        meta["field"] = field
    return meta


def error_from_meta(meta: dict[str, Any], runner_name: str) -> BaseException:
    """Rebuild an error: bentolite exceptions as their own class, others as RemoteException."""
    from .. import exceptions

    type_name = str(meta.get("type", "Exception"))
    message = str(meta.get("message", ""))
    if meta.get("module") == exceptions.__name__ and type_name in exceptions.__all__:
        cls = getattr(exceptions, type_name)
        if cls is exceptions.RemoteException:
            return cls(message, remote_type=type_name)
        if issubclass(cls, exceptions.BentoMLException):
            return cls(message, field=meta.get("field"))
        return cls(message)
    return exceptions.RemoteException(
        f"runner {runner_name!r} raised {type_name}: {message}", remote_type=type_name)
