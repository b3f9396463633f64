"""Shared-memory rings for the large buffers of frames on the local hop.

A process that sends a large buffer (an array of 64 KiB or more) to its peer over a Unix
socket can instead copy it into a ring of its own in shared memory and send a small frame
that says where it lies. The peer copies it out when it reads that frame, before anything
else sees it, and moves the ring's *consumed* mark on; so the ring is freed in order, as
frames are read, whatever then becomes of the call (cancelled, failed, its worker gone).

The ring is an anonymous ``memfd``: it has no name to leak, and its memory goes back to the
system when both processes have closed it (or exited). The peer maps it through
``/proc/<pid>/fd/<fd>`` of the process at the other end of the socket (``SO_PEERCRED``).
Where that fails (another machine, another container, no memfd) frames keep travelling
through the socket, as they do until the peer has said it mapped the ring.

Layout: 64 bytes of header (the consumed mark, a uint64 written only by the reader), then
the data. Positions are byte counts since the ring was made; ``pos % capacity`` is the
offset, and a buffer that would cross the end, or that finds the ring empty, starts at the
next lap instead.
"""
from __future__ import annotations

import collections
import mmap
import os
import socket
import struct
from typing import Any

__all__ = ["RING_BYTES", "MIN_BUFFER_BYTES", "supported", "OutRing", "InRing", "peer_pid"]

#: Size of each ring (one per direction of a connection, made when the first large buffer
#: goes that way); ``BENTOLITE_SHM_RING_MB=0`` keeps every buffer in the socket.
RING_BYTES = int(float(os.environ.get("BENTOLITE_SHM_RING_MB", "8")) * (1 << 20))
#: Buffers smaller than this always travel in the socket.
MIN_BUFFER_BYTES = 64 * 1024
_HEADER_BYTES = 64


def supported(sock: Any) -> bool:
    """Whether frames on ``sock`` may use a ring: a local Unix socket on a system with memfd."""
    return (RING_BYTES > _HEADER_BYTES + MIN_BUFFER_BYTES and hasattr(os, "memfd_create")
            and sock is not None and sock.family == socket.AF_UNIX)


def peer_pid(sock: Any) -> int:
    """The pid of the process at the other end of a Unix socket (0 when not visible)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


class _Ring:
    def __init__(self, mapping: mmap.mmap) -> None:
        self._map = mapping
        self._view = memoryview(mapping)
        self._consumed = self._view[:8].cast("Q")  # aligned: one 8-byte store or load
        self._data = self._view[_HEADER_BYTES:]
        self.size = len(mapping)
        self.capacity = self.size - _HEADER_BYTES

    @property
    def consumed(self) -> int:
        return self._consumed[0]

    def close(self) -> None:
        """Unmap the ring (its memory is freed once the peer has closed it too)."""
        if self._map.closed:
            return
        for view in (self._data, self._consumed, self._view):
            view.release()
        self._map.close()


class OutRing(_Ring):
    """The ring this process writes large buffers into, for its peer to read."""

    def __init__(self, size: int | None = None) -> None:
        size = RING_BYTES if size is None else size
        self.fd = os.memfd_create("bentolite-frames", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self.fd, size)
            super().__init__(mmap.mmap(self.fd, size))
        except BaseException:
            os.close(self.fd)
            raise
        self.written = 0  # position after the last buffer put in
        self._unread: collections.deque[tuple[int, int]] = collections.deque()  # (start, end)

    def put(self, buffer: Any) -> int | None:
        """Copy ``buffer`` in; its position, or None when the ring has no room for it now."""
        data = memoryview(buffer).cast("B")
        n = data.nbytes
        if n > self.capacity:
            return None
        unread = self._unread
        consumed = self.consumed  # the reader only moves it on: a stale value is safe
        while unread and unread[0][1] <= consumed:
            unread.popleft()
        pos = self.written
        offset = pos % self.capacity
        # no wrapping inside a buffer: start the next lap; and start it whenever the ring is
        # empty, so only as many pages are ever touched as the most bytes in flight at once
        if offset and (offset + n > self.capacity or not unread):
            pos += self.capacity - offset
            offset = 0
        if unread and pos + n - self.capacity > unread[0][0]:  # would land on unread bytes
            return None
        self._data[offset:offset + n] = data
        self.written = pos + n
        unread.append((pos, pos + n))
        return pos

    def close(self) -> None:
        super().close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class InRing(_Ring):
    """The peer's ring, mapped from its process; buffers are copied out in frame order."""

    def __init__(self, pid: int, fd: int, size: int) -> None:
        own = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        try:
            if os.fstat(own).st_size != size:
                raise OSError(f"the peer's ring is {os.fstat(own).st_size} bytes, not {size}")
            super().__init__(mmap.mmap(own, size))
        finally:
            os.close(own)

    def take(self, pos: int, n: int) -> memoryview:
        """A private, writable copy of the buffer at ``pos``; frees its place in the ring."""
        offset = pos % self.capacity
        if n < 0 or offset + n > self.capacity or pos < self.consumed:
            raise ValueError(f"bad shared-memory reference ({pos}, {n})")
        copy = bytearray(self._data[offset:offset + n])
        self._consumed[0] = pos + n
        return memoryview(copy)
