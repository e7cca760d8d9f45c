"""rtcbot's base-class behaviours (rtcbot.md §3, §4 test_base.py) and our documented choices."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import pytest

from tests.support.proc import MS
from vidhub.client.subscriptions import (
    Subscription,
    SubscriptionClosed,
    SubscriptionConsumer,
    SubscriptionProducer,
)

T = 2000 * MS


async def _yield_once() -> None:
    """One loop iteration: a task just created runs to its first ``await`` (ordering only)."""
    await asyncio.sleep(0)


class Probe:
    """A subscription for ``putSubscription`` that says when a read has started."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()
        self.reading = asyncio.Event()

    async def get(self) -> Any:
        self.reading.set()
        return await self.q.get()


# -- ports of rtcbot's tests/test_base.py -------------------------------------------------------


async def test_subscription_consumer_switches_between_direct_puts_and_subscriptions() -> None:
    c = SubscriptionConsumer()
    c.put_nowait("test")
    assert await asyncio.wait_for(c.get(), T) == "test"

    q = Probe()
    q.q.put_nowait("yay")
    c.putSubscription(q)
    assert c.subscription is q
    assert await asyncio.wait_for(c.get(), T) == "yay"

    # a get pending on q is cancelled and re-awaited on the direct queue by put_nowait
    q.reading.clear()
    pending = asyncio.ensure_future(c.get())
    await asyncio.wait_for(q.reading.wait(), T)
    c.put_nowait("Hi!")
    assert c.subscription is None
    assert await asyncio.wait_for(pending, T) == "Hi!"
    q.q.put_nowait("unread")
    assert q.q.qsize() == 1  # the cancelled read took nothing

    c.put_nowait("more")
    await c.close()
    await asyncio.wait_for(c, T)
    assert c.closed


async def test_subscription_producer_fan_out_and_unsubscribe() -> None:
    p = SubscriptionProducer(defaultAutosubscribe=True)
    p.put_nowait("1")  # kept: the default subscription exists from the start
    assert await asyncio.wait_for(p.get(), T) == "1"

    q1 = p.subscribe()
    q2 = p.subscribe()
    p.put_nowait("2")
    assert await asyncio.wait_for(p.get(), T) == "2"
    assert q1.get_nowait() == q2.get_nowait() == "2"

    p.unsubscribe(q2)
    p.put_nowait("3")
    assert await asyncio.wait_for(p.get(), T) == "3"
    assert q1.get_nowait() == "3"
    assert q2.empty()

    p.unsubscribe()  # drops the default subscription: "4" is missed
    p.put_nowait("4")
    got = asyncio.ensure_future(p.get())
    await _yield_once()
    p.put_nowait("5")
    assert await asyncio.wait_for(got, T) == "5"

    p.unsubscribeAll()
    p.put_nowait("6")
    assert q1.get_nowait() == "4"
    assert q1.get_nowait() == "5"
    assert q1.empty()

    p.unsubscribe()
    p.unsubscribe()  # twice is harmless
    await p.close()
    await asyncio.wait_for(p, T)


# -- subscribe dispatch -------------------------------------------------------------------------


async def test_subscribe_returns_its_argument_and_dispatches_by_kind() -> None:
    p = SubscriptionProducer()
    q: asyncio.Queue[Any] = asyncio.Queue()
    seen_sync: list[Any] = []
    seen_async: asyncio.Queue[Any] = asyncio.Queue()

    async def on_async(x: Any) -> None:
        seen_async.put_nowait(x)

    assert p.subscribe(q) is q
    assert p.subscribe(seen_sync.append) == seen_sync.append
    assert p.subscribe(on_async) is on_async
    p.subscribe(q)  # set semantics: registered once

    p.put_nowait({"a": 1})
    assert q.get_nowait() == {"a": 1}
    assert q.empty()
    assert seen_sync == [{"a": 1}]
    assert await asyncio.wait_for(seen_async.get(), T) == {"a": 1}


async def test_decorator_form_keeps_the_function() -> None:
    p = SubscriptionProducer()
    got: list[int] = []

    @p.subscribe
    def on_item(x: int) -> None:
        got.append(x)

    p.put_nowait(7)
    assert got == [7]
    assert callable(on_item)


async def test_unsubscribing_an_unknown_subscription_raises_key_error() -> None:
    p = SubscriptionProducer()
    with pytest.raises(KeyError):
        p.unsubscribe(asyncio.Queue())


async def test_awaitable_returned_by_a_callable_is_scheduled_not_dropped() -> None:
    """Choice: a partial of a coroutine function (or async __call__) still runs."""
    p = SubscriptionProducer()
    out: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(tag: str, x: Any) -> None:
        out.put_nowait((tag, x))

    class Handler:
        async def __call__(self, x: Any) -> None:
            out.put_nowait(("obj", x))

    p.subscribe(functools.partial(handler, "partial"))
    p.subscribe(Handler())
    p.put_nowait(1)
    got = {await asyncio.wait_for(out.get(), T), await asyncio.wait_for(out.get(), T)}
    assert got == {("partial", 1), ("obj", 1)}


async def test_a_failing_subscriber_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Choice (STYLE #7): rtcbot aborts the fan-out; we log and carry on."""
    p = SubscriptionProducer()
    after: list[Any] = []

    def broken(_: Any) -> None:
        raise RuntimeError("boom")

    p.subscribe(broken)
    p.subscribe(after.append)
    q = p.subscribe()
    with caplog.at_level(logging.ERROR):
        p.put_nowait("x")
    assert after == ["x"]
    assert q.get_nowait() == "x"
    assert "failed" in caplog.text


async def test_subscribing_something_unusable_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        SubscriptionProducer().subscribe(42)


# -- consumer switching -------------------------------------------------------------------------


async def test_put_subscription_and_stop_subscription() -> None:
    c = SubscriptionConsumer()
    q1: asyncio.Queue[int] = asyncio.Queue()
    q2: asyncio.Queue[int] = asyncio.Queue()
    c.putSubscription(q1)
    assert c.subscription is q1
    c.putSubscription(q2)
    assert c.subscription is q2
    q1.put_nowait(1)
    q2.put_nowait(2)
    assert await asyncio.wait_for(c.get(), T) == 2
    c.stopSubscription()
    assert c.subscription is None
    c.putSubscription(q1)
    assert await asyncio.wait_for(c.get(), T) == 1


async def test_consumer_reads_another_producers_subscription() -> None:
    p = SubscriptionProducer()
    c = SubscriptionConsumer()
    c.putSubscription(p.subscribe())
    p.put_nowait("relayed")
    assert await asyncio.wait_for(c.get(), T) == "relayed"


async def test_closed_put_subscription_falls_back_to_direct_puts() -> None:
    """Choice: rtcbot spins on a subscription raising SubscriptionClosed; we drop it."""
    p = SubscriptionProducer()
    c = SubscriptionConsumer()
    sub = p.subscribe()
    c.putSubscription(sub)
    pending = asyncio.ensure_future(c.get())
    await p.close()
    await _yield_once()
    c.put_nowait("direct")
    assert await asyncio.wait_for(pending, T) == "direct"
    assert c.subscription is None


# -- events -------------------------------------------------------------------------------------


async def test_on_ready_fires_once_and_not_on_close() -> None:
    """Choice: rtcbot fires onReady subscribers again on close; we fire them once."""
    p = SubscriptionProducer()
    calls: list[str] = []
    p.onReady(lambda: calls.append("ready"))
    waiter = asyncio.ensure_future(p.onReady())
    p._setReady(True)
    await asyncio.wait_for(waiter, T)
    assert p.ready
    await p.onReady()  # already ready: returns at once
    await p.close()
    assert calls == ["ready"]
    assert not p.ready


async def test_on_ready_raises_when_closed_before_ready() -> None:
    p = SubscriptionProducer()
    waiter = asyncio.ensure_future(p.onReady())
    await _yield_once()
    err = ConnectionRefusedError("nope")
    p._setError(err)
    await p.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(waiter, T)
    with pytest.raises(ConnectionRefusedError):
        await p.onReady()


async def test_await_on_error_resolves_to_the_error() -> None:
    """Choice: rtcbot 0.2.5's ``await onError()`` raises TypeError; ours works."""
    p = SubscriptionProducer()
    seen: list[BaseException] = []
    p.onError(seen.append)
    waiter = asyncio.ensure_future(p.onError())
    await _yield_once()
    err = ValueError("bad")
    p._setError(err)
    assert await asyncio.wait_for(waiter, T) is err
    assert seen == [err]
    assert p.error is err
    assert await p.onError() is err  # already failed: at once


async def test_await_on_error_resolves_to_none_on_clean_close() -> None:
    p = SubscriptionProducer()
    waiter = asyncio.ensure_future(p.onError())
    await _yield_once()
    await p.close()
    assert await asyncio.wait_for(waiter, T) is None


async def test_on_close_callbacks_queues_and_await() -> None:
    p = SubscriptionProducer()
    q: asyncio.Queue[Any] = asyncio.Queue()
    calls: list[str] = []
    p.onClose(q)
    p.onClose(lambda: calls.append("closed"))
    waiter = asyncio.ensure_future(p.onClose())
    awaited = asyncio.ensure_future(asyncio.wait_for(p, T))
    await _yield_once()
    await p.close()
    await p.close()  # idempotent, still awaitable
    await asyncio.wait_for(waiter, T)
    await awaited
    assert calls == ["closed"]
    assert q.get_nowait() is None
    assert q.empty()


# -- after close --------------------------------------------------------------------------------


async def test_get_after_close_drains_then_raises() -> None:
    """Choice: rtcbot's get() hangs forever after close; ours drains then raises."""
    p = SubscriptionProducer()
    extra = p.subscribe()
    p.put_nowait("a")  # before the default subscription exists: not for get()
    got = asyncio.ensure_future(p.get())
    await _yield_once()
    p.put_nowait("b")
    assert await asyncio.wait_for(got, T) == "b"
    p.put_nowait("c")
    p.put_nowait("d")
    await p.close()
    assert await asyncio.wait_for(p.get(), T) == "c"
    assert await asyncio.wait_for(p.get(), T) == "d"
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(p.get(), T)
    assert isinstance(extra, Subscription)
    assert [extra.get_nowait() for _ in range(4)] == ["a", "b", "c", "d"]
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(extra.get(), T)


async def test_pending_get_is_woken_by_close() -> None:
    p = SubscriptionProducer()
    waiter = asyncio.ensure_future(p.get())
    await _yield_once()
    await p.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(waiter, T)


async def test_consumer_get_after_close_raises() -> None:
    c = SubscriptionConsumer()
    waiter = asyncio.ensure_future(c.get())
    await _yield_once()
    await c.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(waiter, T)
    with pytest.raises(SubscriptionClosed):
        await c.get()


async def test_hold_early_hands_items_to_the_first_subscriber_only() -> None:
    p = SubscriptionProducer(holdEarly=2)
    p.put_nowait(1)
    p.put_nowait(2)
    p.put_nowait(3)  # bounded: the oldest is dropped
    assert await asyncio.wait_for(p.get(), T) == 2
    assert await asyncio.wait_for(p.get(), T) == 3
    late = p.subscribe()
    assert late.empty()
