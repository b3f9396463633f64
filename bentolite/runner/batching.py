"""Adaptive batching: one FIFO, work-conserving dispatcher per runner method in a worker.

* The moment the model is free, queued requests are taken in arrival order up to
  ``max_batch_size`` items along ``batch_dim`` (items, not requests; ``<=``). A request that
  accepts partial results (``on_part``: coalesced calls from an API worker) and does not fit
  the room left in a batch is split: its first rows fill the batch and their results go to
  ``on_part`` at once, the rest lead the next batch. Other requests are never split; one
  larger than ``max_batch_size`` runs alone.
* In a closed loop whose callers come back slower than the model's fixed cost, a lump of
  everyone's requests after an idle gap runs in two halves, so the model works on one while
  the other's callers come back (``_batch_cap``).
* When the model is idle the dispatcher runs at once, unless its online cost model
  (``latency ~ a + b * items``, least squares over recent batches) and the measured arrival
  rate say that a short wait (at most ``max_wait_ms``) grows the batch to the size needed to
  keep up with arrivals, and no queued request would miss its deadline by waiting.
* Every request has a deadline of ``max_latency_ms`` after it arrived; one that can no longer
  make it fails at once with ServiceUnavailable naming the setting and every term of the
  decision. "Can no longer make it" needs evidence: its measured queue time plus what the
  cost model predicts for the wait and the run, and the model is trusted only once fitted
  on three warm batches (a worker's first batch, cold, does not train it); until then
  nothing is shed. A request that finds the model idle always runs, so an estimate can never
  lock a model out; the requests queued behind a running batch are the ones shed. The queue holds at most ``max_queue_size`` requests; more are refused
  at once.
"""
from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import Any, Awaitable, Callable, Hashable, Sequence

import attrs

from ..exceptions import ServiceUnavailable

__all__ = ["BatchLimits", "CostModel", "AdaptiveBatcher"]

RunBatch = Callable[[list[Any]], Awaitable[list[Any]]]
OnBatch = Callable[[int, Sequence[float]], None]
#: ``split(payload, rows)``: the payloads of its first ``rows`` items and of the rest, or None
Split = Callable[[Any, int], "tuple[Any, Any] | None"]
#: ``on_part(result, rows)``: the result of the first ``rows`` items of a split request
OnPart = Callable[[Any, int], None]


@attrs.frozen
class BatchLimits:
    """The effective batching settings of one method (see ``BatchingConfig``)."""

    batchable: bool = True
    max_batch_size: int = 100
    max_latency_ms: float = 10000
    max_wait_ms: float = 10
    max_queue_size: int = 10000


#: a measured batch longer than this many times the estimate counts as this many times it:
#: a garbage-collection pause or a page-fault storm cannot swing the fit
OUTLIER_FACTOR = 4.0


class CostModel:
    """Online least-squares fit of batch latency: ``seconds ~ a + b * items``.

    Robust to outliers once fitted: a sample above ``OUTLIER_FACTOR`` times the estimate is
    clipped to it, so one slow batch moves the fit by at most a few percent, while a lasting
    slowdown still takes over within a window of batches.
    """

    __slots__ = ("_samples", "_sx", "_sy", "_sxx", "_sxy", "a", "b", "fitted")

    def __init__(self, window: int = 64) -> None:
        self._samples: collections.deque[tuple[int, float]] = collections.deque(maxlen=window)
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        self.a = 0.0
        self.b = 0.0
        #: whether the fit rests on enough batches (3) to be trusted (deadline shedding)
        self.fitted = False

    def _account(self, x: float, y: float, sign: float) -> None:
        self._sx += sign * x
        self._sy += sign * y
        self._sxx += sign * x * x
        self._sxy += sign * x * y

    def add(self, items: int, duration_s: float) -> None:
        if self.fitted:
            duration_s = min(duration_s, OUTLIER_FACTOR * max(self.estimate_s(items), 1e-4))
        samples = self._samples
        if len(samples) == samples.maxlen:
            self._account(*samples[0], -1.0)
        samples.append((items, duration_s))
        self._account(items, duration_s, 1.0)
        n = len(samples)
        self.fitted = n >= 3
        mean_x, mean_y = self._sx / n, self._sy / n
        var_x = self._sxx / n - mean_x * mean_x
        if var_x > 1e-9:
            self.b = max((self._sxy / n - mean_x * mean_y) / var_x, 0.0)
            self.a = max(mean_y - self.b * mean_x, 0.0)
        else:  # one batch size seen so far: attribute it all to the fixed cost
            self.a, self.b = mean_y, 0.0

    def estimate_s(self, items: int) -> float:
        return self.a + self.b * items


class _Request:
    __slots__ = ("payload", "items", "key", "future", "arrived", "deadline", "on_part", "whole")

    def __init__(self, payload: Any, items: int, key: Hashable, future: asyncio.Future[Any],
                 arrived: float, deadline: float) -> None:
        self.payload = payload
        self.items = items
        self.key = key
        self.future = future
        self.arrived = arrived
        self.deadline = deadline
        self.on_part: OnPart | None = None  # set: the request may be split
        self.whole: _Request | None = None  # set: the first rows of this (queued) request


class AdaptiveBatcher:
    """Queues calls to one method and runs them in batches through ``run_batch``.

    Args:
        run_batch: ``await run_batch(payloads)`` returns one result per payload (in order);
            an exception fails every request of that batch.
        runner_name, method_name: used in error messages.
        limits: the method's effective settings.
        on_batch: called with ``(items, queue_waits_s)`` after each batch (metrics).
        model_lock: shared by the batchers of methods that run on one model thread: a batch
            is taken only once the model is free, so calls queued meanwhile can still be
            withdrawn, meet their deadline check, and join a fuller batch.
        split: how a request that accepts partial results is split by rows (``Split``).
    """

    def __init__(self, run_batch: RunBatch, *, runner_name: str, method_name: str,
                 limits: BatchLimits, on_batch: OnBatch | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 model_lock: asyncio.Lock | None = None,
                 split: Split | None = None) -> None:
        self._run_batch = run_batch
        self._split = split
        self._model_lock = model_lock
        self.runner_name = runner_name
        self.method_name = method_name
        self.limits = limits
        self._on_batch = on_batch
        self._clock = clock
        self._queue: collections.deque[_Request] = collections.deque()
        self._queued_items = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._busy_until = 0.0
        self._rate = 0.0  # items/s, exponentially decayed
        self._rate_t = 0.0
        self.cost = CostModel()
        #: the first batch of a worker runs cold (lazy allocations, first-call set-up): it
        #: does not train the cost model
        self._warm = False
        self._running = False  # a batch of this method is in the model
        self._cork_misses = 0
        self._cork_resume_at = 0.0
        # the closed-loop lump (see _batch_cap): how the last batch ended, and the idle gaps
        # after batches that left nothing queued
        self._last_end = 0.0
        self._drained = False
        self._turnaround_s = 0.0
        self._running_items = 0
        self._population = 0.0  # items queued or running at once lately (decaying peak)
        self._population_t = 0.0

    # --- public ---------------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    async def submit(self, payload: Any, items: int = 1, key: Hashable = None) -> Any:
        """Queue one call of ``items`` items; returns its result when its batch has run.

        Requests with different ``key`` (e.g. unequal non-batch arguments) never share a batch.
        """
        return await self.enqueue(payload, items, key)

    def enqueue(self, payload: Any, items: int = 1, key: Hashable = None,
                on_part: OnPart | None = None) -> asyncio.Future[Any]:
        """Like ``submit`` but returns the future; cancelling it takes the call off the queue.

        With ``on_part`` the call may be split to fill a batch: the results of its first rows
        go to ``on_part(result, rows)`` and the future gets the result of the rest.
        """
        limits = self.limits
        if len(self._queue) >= limits.max_queue_size:
            raise ServiceUnavailable(
                f"runner {self.runner_name!r} method {self.method_name!r}: queue is full "
                f"({limits.max_queue_size} requests waiting); raise runners.batching."
                f"max_queue_size (or runners.{self.runner_name}.batching.max_queue_size) "
                "or add workers"
            )
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._dispatch_loop())
        now = self._clock()
        self._note_arrival(now, items)
        self._note_population(now, self._queued_items + items + self._running_items)
        future: asyncio.Future[Any] = loop.create_future()
        req = _Request(payload, items, key, future, now, now + limits.max_latency_ms / 1000)
        req.on_part = on_part
        future.add_done_callback(lambda f: self._remove(req) if f.cancelled() else None)
        self._queue.append(req)
        self._queued_items += items
        self._arm_expiry()
        assert self._wakeup is not None
        self._wakeup.set()
        return future

    async def close(self) -> None:
        """Stop the dispatcher; queued requests fail with ServiceUnavailable."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue:
            req = self._queue.popleft()
            if not req.future.done():
                req.future.set_exception(ServiceUnavailable(
                    f"runner {self.runner_name!r} is shutting down"))
        self._queued_items = 0

    # --- internals ------------------------------------------------------------------

    def _note_arrival(self, now: float, items: int) -> None:
        tau = 0.25
        self._rate = self._rate * math.exp(-(now - self._rate_t) / tau) + items / tau
        self._rate_t = now

    def _note_population(self, now: float, items: int) -> None:
        decayed = self._population * math.exp(-(now - self._population_t) / 2.0)
        self._population, self._population_t = max(decayed, float(items)), now

    def _arrival_rate(self, now: float) -> float:
        return self._rate * math.exp(-(now - self._rate_t) / 0.25)

    def arrivals_within(self, seconds: float) -> float:
        """Items expected to arrive in the next ``seconds`` at the recent arrival rate."""
        return self._arrival_rate(self._clock()) * seconds

    def _remove(self, req: _Request) -> None:
        try:
            self._queue.remove(req)
        except ValueError:
            return
        self._queued_items -= req.items

    def _fail(self, req: _Request, exc: BaseException) -> None:
        self._remove(req)
        if not req.future.done():
            req.future.set_exception(exc)

    def _deadline_error(self, req: _Request, now: float, model_wait_s: float,
                        run_s: float) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"runner {self.runner_name!r} method {self.method_name!r}: request cannot finish "
            f"within max_latency_ms={self.limits.max_latency_ms:g}: queued "
            f"{(now - req.arrived) * 1000:.0f} ms + waiting for the model to free "
            f"{model_wait_s * 1000:.0f} ms + estimated run {run_s * 1000:.0f} ms > "
            f"{self.limits.max_latency_ms:g} ms; raise runners.batching.max_latency_ms "
            f"(or runners.{self.runner_name}.batching.max_latency_ms) or add workers"
        )

    def _expire(self) -> None:
        """Fail every queued request that cannot meet its deadline even if run alone next:
        measured queue time, plus the model's remaining busy time and the run time as the
        cost model estimates them. Only while the model is busy, and only once the cost
        model is trusted: during a worker's first batches (cold start) nothing is shed."""
        self._expiry = None
        if not self.cost.fitted or not self._running:
            return  # an idle model runs the head next: a stale estimate never locks it out
        now = self._clock()
        model_wait_s = max(self._busy_until - now, 0.0)
        # FIFO with one max_latency: deadlines rise along the queue, so stop at the first
        # request that can still make it
        while self._queue:
            req = self._queue[0]
            run_s = self.cost.estimate_s(req.items)
            if req.future.done():
                self._remove(req)
            elif now + model_wait_s + run_s > req.deadline:
                self._fail(req, self._deadline_error(req, now, model_wait_s, run_s))
            else:
                break
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        # an idle model runs the head next (``_expire`` does nothing then): no timer until a
        # batch starts, which re-arms it
        if (self._expiry is not None or not self._running or not self._queue
                or not self.cost.fitted):
            return
        head = self._queue[0]
        when = head.deadline - self.cost.estimate_s(head.items)  # its latest start
        if self._busy_until > when:  # the model will still be busy then: decide now
            when = self._clock()
        loop = asyncio.get_running_loop()
        delay = max(when - self._clock(), 0.0)
        self._expiry = loop.call_later(delay + 1e-4, self._expire)

    def _rearm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expire()

    def _cork_target(self, now: float) -> int:
        """Items worth gathering before running: the batch size that keeps up with arrivals.

        With arrival rate r and cost a + b*n, a batch of n keeps up when a + b*n <= n/r,
        i.e. n >= r*a / (1 - r*b). Rounded to nearest (not up) so that a closed loop of one
        caller, whose rate sits just around 1/a, is not held back.
        """
        if not self.limits.batchable or not self.cost.fitted or now < self._cork_resume_at:
            return 1
        rate = self._arrival_rate(now)
        a, b = self.cost.a, self.cost.b
        if rate * b >= 1:
            return self.limits.max_batch_size
        return min(max(round(rate * a / (1 - rate * b)), 1), self.limits.max_batch_size)

    async def _wait_for_batch(self) -> None:
        """Idle model with a queue: maybe wait (<= max_wait_ms) for a fuller batch.

        A wait that gathers nothing (e.g. every caller is already queued) turns waiting off
        for a while, doubling each time, so a closed loop of callers never pays for it twice.
        """
        assert self._wakeup is not None
        start = self._clock()
        cork_end = start + self.limits.max_wait_ms / 1000
        start_items = self._queued_items
        waited = False
        while self._queue:
            now = self._clock()
            target = self._cork_target(now)
            if self._queued_items >= target:
                break
            head = self._queue[0]
            # never wait past the point where the head could still run the target batch in time
            end = min(cork_end, head.deadline - self.cost.estimate_s(target))
            remaining = end - now
            if remaining <= 0 or self._arrival_rate(now) * remaining < 1:
                break
            waited = True
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
        if waited:
            if self._queued_items > start_items:
                self._cork_misses = 0
            else:
                self._cork_misses += 1
                self._cork_resume_at = self._clock() + min(0.01 * 2 ** self._cork_misses, 2.0)

    def _batch_cap(self) -> int:
        """Items this batch may take: ``max_batch_size``, or half the queue for a lump.

        In a closed loop whose callers take longer to come back (the idle gap after a batch
        that left nothing queued) than the model's fixed cost, one batch of everyone is
        followed by that gap every time; running the lump in two halves keeps the model busy
        while the first half's callers come back, and the loop settles into two cohorts that
        take turns. Only a lump of at least 4 items that is most of the items lately in the
        worker at once (everyone, back) is split, so sparse or open-loop traffic and the two
        cohorts themselves are left alone.
        """
        cap = self.limits.max_batch_size
        queued = self._queued_items
        if (self.limits.batchable and self.cost.fitted and self._drained and queued >= 4
                and queued >= 0.75 * self._population and self._turnaround_s > 1.5 * self.cost.a):
            return min(cap, math.ceil(queued / 2))
        return cap

    def _take_batch(self, now: float) -> list[_Request]:
        queue = self._queue
        while queue and queue[0].future.done():
            self._remove(queue[0])
        if not queue:
            return []
        cap = self._batch_cap()
        if queue[0].items > cap:
            head = self._split_off(queue[0], cap)
            if head is not None:
                return [head]
        first = queue.popleft()
        self._queued_items -= first.items
        batch = [first]
        if not self.limits.batchable:
            return batch
        items = first.items
        deadline = first.deadline
        while queue:
            nxt = queue[0]
            if nxt.future.done():
                queue.popleft()
                self._queued_items -= nxt.items
                continue
            if nxt.key != first.key:
                break
            room = cap - items
            take = min(nxt.items, room)
            if take <= 0 or (self.cost.fitted and now + self.cost.estimate_s(items + take)
                             > min(deadline, nxt.deadline)):
                break  # full, or a bigger batch would make an earlier request miss its deadline
            if take < nxt.items:  # fill the batch with its first rows, if it can be split
                head = self._split_off(nxt, take)
                if head is not None:
                    batch.append(head)
                break
            queue.popleft()
            self._queued_items -= nxt.items
            items += nxt.items
            deadline = min(deadline, nxt.deadline)
            batch.append(nxt)
        return batch

    def _split_off(self, req: _Request, rows: int) -> _Request | None:
        """A request for the first ``rows`` items of queued ``req``, which keeps the rest."""
        if req.on_part is None or self._split is None:
            return None
        parts = self._split(req.payload, rows)
        if parts is None:
            return None
        head = _Request(parts[0], rows, req.key, req.future, req.arrived, req.deadline)
        head.whole = req
        req.payload = parts[1]
        req.items -= rows
        self._queued_items -= rows
        return head

    async def _dispatch_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_batch()
            if self._model_lock is None:
                await self._run_next_batch()
            else:
                async with self._model_lock:
                    await self._run_next_batch()

    async def _run_next_batch(self) -> None:
        now = self._clock()
        batch = self._take_batch(now)
        if not batch:
            return
        items = sum(r.items for r in batch)
        if self._drained:  # the time its callers took to come back
            # clipped: one long quiet spell cannot make a lump of the next burst
            gap = min(now - self._last_end, 2 * self.cost.a)
            self._turnaround_s += 0.2 * (gap - self._turnaround_s)
        self._busy_until = now + self.cost.estimate_s(items)
        self._running_items = items
        self._running = True
        self._rearm_expiry()
        waits = [now - r.arrived for r in batch]
        try:
            results = await self._run_batch([r.payload for r in batch])
        except asyncio.CancelledError:
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(ServiceUnavailable(
                        f"runner {self.runner_name!r} is shutting down"))
            raise
        except BaseException as e:  # noqa: BLE001 - delivered to every caller
            for r in batch:
                self._fail(r.whole or r, e)
        else:
            for r, result in zip(batch, results):
                if r.future.done():
                    continue
                if r.whole is not None:  # the first rows of a request still queued
                    r.whole.on_part(result, r.items)  # type: ignore[misc]
                else:
                    r.future.set_result(result)
        self._running = False
        end = self._clock()
        self._last_end, self._drained, self._running_items = end, not self._queue, 0
        if self._warm:
            self.cost.add(items, end - now)
        self._warm = True
        self._busy_until = end
        if self._expiry is not None:  # the model is idle: the head runs next, nothing is shed
            self._expiry.cancel()
            self._expiry = None
        if self._on_batch is not None:
            self._on_batch(items, waits)
