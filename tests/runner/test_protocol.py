"""The framed protocol over a real socket pair: frames of every size, split anywhere."""
from __future__ import annotations

import asyncio
import random
import socket

import numpy as np

from bentolite.runner.container import decode_payload, encode_payload
from bentolite.runner.protocol import CALL, RESULT, Frame, FrameProtocol, pack_frame


def test_frames_of_any_size_arrive_whole_in_order_however_the_stream_is_cut() -> None:
    """Small frames share the reused head buffer; big ones (> 64 KiB) get their own; the
    writer cuts the byte stream at random points so headers and bodies straddle reads."""
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 100, 5_000, 70_000, 300_000, 2_000_000]) for _ in range(60)]
    arrays = [np.arange(n // 4, dtype=np.float32) for n in sizes]
    stream = b"".join(b"".join(bytes(p) for p in pack_frame(
        CALL if i % 2 else RESULT, i, {"m": f"m{i}"}, encode_payload(a)))
        for i, a in enumerate(arrays))

    async def main() -> list[Frame]:
        loop = asyncio.get_running_loop()
        received: list[Frame] = []
        done = loop.create_future()

        def on_frame(frame: Frame) -> None:
            received.append(frame)
            if len(received) == len(arrays):
                done.set_result(None)

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        transport, _ = await loop.connect_accepted_socket(lambda: FrameProtocol(on_frame), ours)
        theirs.setblocking(False)
        pos = 0
        while pos < len(stream):
            cut = pos + rng.choice([1, 7, 19, 1000, 65_536, 500_000])
            await loop.sock_sendall(theirs, stream[pos:cut])
            pos = cut
            await asyncio.sleep(0)
        await asyncio.wait_for(done, 30)
        transport.close()
        theirs.close()
        return received

    frames = asyncio.run(main())
    for i, (frame, array) in enumerate(zip(frames, arrays)):
        assert frame.request_id == i and frame.meta == {"m": f"m{i}"}
        assert frame.kind == (CALL if i % 2 else RESULT)
        out = decode_payload(frame.buffers)
        assert out.dtype == array.dtype and np.array_equal(out, array)
        if out.size:
            out[0] = -1  # decoded arrays are writable: they own their frame's memory
