"""AdaptiveBatcher in-process: FIFO, item-counted batches, bounds, deadlines, cancellation."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bentolite.exceptions import ServiceUnavailable
from bentolite.runner.batching import AdaptiveBatcher, BatchLimits, CostModel


class Model:
    """A batch callback that records each batch and takes ``delay_s`` per batch."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.batches: list[list[Any]] = []

    async def __call__(self, payloads: list[Any]) -> list[Any]:
        self.batches.append(list(payloads))
        await asyncio.sleep(self.delay_s)
        return [("done", p) for p in payloads]


def make(model: Model, **limits: Any) -> AdaptiveBatcher:
    return AdaptiveBatcher(model, runner_name="r", method_name="m", limits=BatchLimits(**limits))


def test_fifo_order_and_item_counted_batches() -> None:
    async def main() -> None:
        model = Model()
        batcher = make(model, max_batch_size=5)
        sizes = [1, 2, 3, 1, 4, 2, 2, 1, 5, 1]
        calls = [batcher.submit(i, items=n) for i, n in enumerate(sizes)]
        results = await asyncio.gather(*calls)
        assert results == [("done", i) for i in range(len(sizes))]
        flat = [p for batch in model.batches for p in batch]
        assert flat == list(range(len(sizes)))  # served in arrival order
        for batch in model.batches:
            assert sum(sizes[i] for i in batch) <= 5
        assert any(len(b) > 1 for b in model.batches)
        await batcher.close()

    asyncio.run(main())


def test_oversized_request_runs_alone() -> None:
    async def main() -> None:
        model = Model()
        batcher = make(model, max_batch_size=4)
        results = await asyncio.gather(batcher.submit("a", 1), batcher.submit("big", 9),
                                       batcher.submit("c", 1))
        assert results == [("done", "a"), ("done", "big"), ("done", "c")]
        assert ["big"] in model.batches
        await batcher.close()

    asyncio.run(main())


def test_non_batchable_never_batches() -> None:
    async def main() -> None:
        model = Model()
        batcher = make(model, batchable=False)
        await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        assert [len(b) for b in model.batches] == [1] * 20
        await batcher.close()

    asyncio.run(main())


def test_different_keys_never_share_a_batch() -> None:
    async def main() -> None:
        model = Model()
        batcher = make(model)
        await asyncio.gather(*(batcher.submit(i, 1, key=i % 2) for i in range(10)))
        for batch in model.batches:
            assert len({i % 2 for i in batch}) == 1
        await batcher.close()

    asyncio.run(main())


def test_full_queue_is_refused_with_the_setting_named() -> None:
    async def main() -> None:
        model = Model(delay_s=0.05)
        batcher = make(model, max_queue_size=3, max_batch_size=1)
        tasks = [asyncio.ensure_future(batcher.submit("first"))]
        await asyncio.sleep(0.01)  # the model takes the first
        tasks += [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0)  # three wait
        assert batcher.queue_length == 3
        with pytest.raises(ServiceUnavailable) as info:
            await batcher.submit("extra")
        assert "max_queue_size" in info.value.message
        assert info.value.error_code == 503
        await asyncio.gather(*tasks)
        await batcher.close()

    asyncio.run(main())


def test_request_that_cannot_meet_its_deadline_fails_fast() -> None:
    async def main() -> None:
        model = Model(delay_s=0.2)
        batcher = make(model, max_latency_ms=300, max_batch_size=1)
        for i in range(4):  # a cold first batch, then three warm ones: the estimate is trusted
            await batcher.submit(f"warm-up {i}")
        first = asyncio.ensure_future(batcher.submit("first"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(batcher.submit("second"))
        done, _ = await asyncio.wait([second], timeout=0.15)
        assert second in done, "the queued request should fail before the model frees"
        with pytest.raises(ServiceUnavailable) as info:
            second.result()
        message = info.value.message
        assert re.search(r"max_latency_ms=300: queued \d+ ms \+ waiting for the model to free "
                         r"[12]\d\d ms \+ estimated run 2\d\d ms > 300 ms", message), message
        assert "runners.batching.max_latency_ms" in info.value.message
        assert "runners.r.batching.max_latency_ms" in info.value.message
        assert await first == ("done", "first")
        assert all("second" not in b for b in model.batches)
        await batcher.close()

    asyncio.run(main())


def test_cancelled_caller_leaves_the_queue() -> None:
    async def main() -> None:
        model = Model(delay_s=0.05)
        batcher = make(model, max_batch_size=1)
        first = asyncio.ensure_future(batcher.submit("first"))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(batcher.submit("gone"))
        await asyncio.sleep(0)
        assert batcher.queue_length == 1
        gone.cancel()
        await asyncio.sleep(0)
        assert batcher.queue_length == 0
        assert await first == ("done", "first")
        assert await batcher.submit("after") == ("done", "after")
        assert all("gone" not in b for b in model.batches)
        await batcher.close()

    asyncio.run(main())


def test_batch_error_reaches_every_caller() -> None:
    async def main() -> None:
        async def failing(payloads: list[Any]) -> list[Any]:
            raise ValueError("boom")

        batcher = AdaptiveBatcher(failing, runner_name="r", method_name="m",
                                  limits=BatchLimits())
        results = await asyncio.gather(*(batcher.submit(i) for i in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        await batcher.close()

    asyncio.run(main())


def test_cost_model_learns_a_line() -> None:
    model = CostModel()
    for n in (1, 2, 4, 8, 16, 1, 4):
        model.add(n, 0.005 + 0.0001 * n)
    assert model.a == pytest.approx(0.005, rel=1e-6)
    assert model.b == pytest.approx(0.0001, rel=1e-6)
    assert model.estimate_s(10) == pytest.approx(0.006)


def test_sequential_calls_run_one_at_a_time() -> None:
    async def main() -> None:
        model = Model(delay_s=0.001)
        batcher = make(model)
        for i in range(30):
            await batcher.submit(i)
        assert [len(b) for b in model.batches] == [1] * 30
        await batcher.close()

    asyncio.run(main())


def test_arrivals_within_follows_the_recent_arrival_rate() -> None:
    now = [100.0]

    async def main() -> None:
        batcher = AdaptiveBatcher(Model(delay_s=0.0), runner_name="r", method_name="m",
                                  limits=BatchLimits(), clock=lambda: now[0])
        assert batcher.arrivals_within(1.0) == 0.0  # nothing seen yet
        calls = []
        for _ in range(200):  # 1,000 items/s for 0.2 s
            now[0] += 0.001
            calls.append(batcher.enqueue(None))
        busy = batcher.arrivals_within(0.005)
        now[0] += 2.0  # then quiet for 2 s (8 decay times)
        quiet = batcher.arrivals_within(0.005)
        await asyncio.gather(*calls)
        await batcher.close()
        # the estimate decays from its start, so after 0.2 s it is still below the rate
        assert 2.0 < busy <= 5.0, busy
        assert quiet < 0.01, quiet

    asyncio.run(main())


def test_no_shedding_before_the_cost_model_is_trusted() -> None:
    """A cold first batch (1 s) delays the requests queued behind it past their 0.5 s
    deadline: with no trusted estimate yet, they run instead of failing."""

    class ColdModel(Model):
        async def __call__(self, payloads: list[Any]) -> list[Any]:
            self.delay_s = 1.0 if not self.batches else 0.02
            return await super().__call__(payloads)

    async def main() -> None:
        model = ColdModel()
        batcher = make(model, max_latency_ms=500, max_batch_size=8)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(16)))
        assert results == [("done", i) for i in range(16)]
        assert not batcher.cost.fitted  # the cold batch did not train it; one warm one did
        await batcher.close()

    asyncio.run(main())


def test_one_outlier_does_not_swing_the_cost_model() -> None:
    cost = CostModel()
    for items in (1, 2, 4, 8) * 4:
        cost.add(items, 0.010 + 0.001 * items)
    before = cost.estimate_s(4)
    cost.add(4, 5.0)  # a 5 s stall (GC pause, swap)
    assert cost.estimate_s(4) < 1.2 * before


def test_an_idle_model_runs_the_request_whatever_the_estimate() -> None:
    """A model that got slower than its deadline once still gets the next request when it is
    idle: an estimate can never lock it out (and later batches correct the estimate)."""

    async def main() -> None:
        model = Model(delay_s=0.15)
        batcher = make(model, max_latency_ms=100, max_batch_size=1)
        for i in range(4):  # cold, then three warm batches at 150 ms: trusted, over 100 ms
            await batcher.submit(i)
        assert batcher.cost.estimate_s(1) > 0.1
        model.delay_s = 0.01  # it got fast again
        assert [await batcher.submit(f"again {i}") for i in range(3)] == [
            ("done", f"again {i}") for i in range(3)]
        await batcher.close()

    asyncio.run(main())


def test_a_request_that_accepts_parts_is_split_to_fill_a_batch() -> None:
    """Rows, not requests: a call with ``on_part`` fills the room left in a batch with its
    first rows (their result goes to ``on_part`` at once); one without is never split."""
    async def main() -> None:
        model = Model()

        def split(payload: Any, rows: int) -> tuple[Any, Any]:
            name, n = payload
            return (name, rows), (name, n - rows)

        batcher = AdaptiveBatcher(model, runner_name="r", method_name="m",
                                  limits=BatchLimits(max_batch_size=4), split=split)
        parts: list[tuple[Any, int]] = []
        first = batcher.enqueue(("a", 3), 3)
        whole = batcher.enqueue(("b", 4), 4, on_part=lambda result, rows: parts.append(
            (result, rows)))
        plain = batcher.enqueue(("c", 4), 4)
        assert await first == ("done", ("a", 3))
        assert await whole == ("done", ("b", 3))  # the rest of its rows
        assert parts == [(("done", ("b", 1)), 1)]  # its first row rode with "a"
        assert await plain == ("done", ("c", 4))
        assert model.batches == [[("a", 3), ("b", 1)], [("b", 3)], [("c", 4)]]
        await batcher.close()

    asyncio.run(main())


def test_a_failed_part_fails_the_whole_request() -> None:
    async def main() -> None:
        class Failing(Model):
            async def __call__(self, payloads: list[Any]) -> list[Any]:
                self.batches.append(list(payloads))
                if len(self.batches) == 1:
                    raise ValueError("first batch failed")
                return [("done", p) for p in payloads]

        model = Failing()
        batcher = AdaptiveBatcher(model, runner_name="r", method_name="m",
                                  limits=BatchLimits(max_batch_size=4),
                                  split=lambda p, rows: ((p[0], rows), (p[0], p[1] - rows)))
        first = batcher.enqueue(("a", 3), 3)
        whole = batcher.enqueue(("b", 4), 4, on_part=lambda *_: None)
        after = batcher.enqueue(("c", 1), 1)
        for fut in (first, whole):
            with pytest.raises(ValueError, match="first batch failed"):
                await fut
        assert await after == ("done", ("c", 1))
        assert [("b", 3)] not in model.batches  # its rest never ran
        await batcher.close()

    asyncio.run(main())


def _closed_loop_batches(turnaround_s: float, callers: int = 64, rounds: int = 16,
                         coalesced: bool = False) -> list[int]:
    """Batch sizes a closed loop of ``callers`` gets from a model costing 8 ms + 0.1 ms per
    item, on a virtual clock: every caller comes back ``turnaround_s`` after its batch.
    ``coalesced``: the callers' rows arrive as one call that accepts parts (an API worker's)."""
    async def main() -> list[int]:
        now = [0.0]
        sizes: list[int] = []
        waiting: list[tuple[float, int]] = []  # (when, rows) of callers on their way back

        async def model(payloads: list[Any]) -> list[Any]:
            rows = sum(p for p in payloads)
            sizes.append(rows)
            now[0] += 0.008 + 0.0001 * rows
            return [("done", p) for p in payloads]

        batcher = AdaptiveBatcher(model, runner_name="r", method_name="m", clock=lambda: now[0],
                                  limits=BatchLimits(max_batch_size=64, max_wait_ms=0),
                                  split=lambda p, rows: (rows, p - rows))
        for n in (8, 16, 32, 64):  # a fitted cost model, as after a few batches
            batcher.cost.add(n, 0.008 + 0.0001 * n)
        waiting.append((0.0, callers))
        while len(sizes) < rounds:
            when = min(w for w, _ in waiting)
            rows = sum(r for w, r in waiting if w == when)
            waiting[:] = [(w, r) for w, r in waiting if w != when]
            now[0] = max(now[0], when)
            if coalesced:
                calls = [batcher.enqueue(rows, rows, on_part=lambda result, part: waiting.append(
                    (now[0] + turnaround_s, part)))]
            else:
                calls = [batcher.enqueue(1, 1) for _ in range(rows)]
            for call in calls:
                call.add_done_callback(lambda f: waiting.append((now[0] + turnaround_s, f.result()[1])))
            while not waiting or (batcher.queue_length and min(w for w, _ in waiting) > now[0]):
                await asyncio.sleep(0)
        await batcher.close()
        return sizes

    return asyncio.run(main())


@pytest.mark.parametrize("coalesced", [False, True])
def test_a_closed_loop_lump_runs_in_two_halves_when_its_callers_are_slow_to_come_back(
        coalesced: bool) -> None:
    """Callers that take longer to come back (15 ms) than the model's fixed cost (8 ms): one
    batch of all 64 would leave the model idle 15 ms a round; it runs the lump in halves,
    and the loop keeps two cohorts of 32 taking turns. Callers that come back quickly (2 ms)
    keep one batch of everyone, which is cheaper then."""
    slow = _closed_loop_batches(0.015, coalesced=coalesced)
    assert slow[0] == 64  # nothing known yet about the loop
    assert slow[-6:] == [32] * 6, slow  # and it stays so: the cohorts are not split again
    for turnaround_s in (0.002, 0.009):  # below 1.5x the fixed cost
        assert _closed_loop_batches(turnaround_s, coalesced=coalesced)[-6:] == [64] * 6
