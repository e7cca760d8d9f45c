"""rtcbot-style producers and consumers: the subscription model behind :class:`Websocket`.

Theory of operation (rtcbot 0.2.5 semantics, rtcbot.md §1-3):

- A **producer** is something you receive from. ``subscribe(x)`` registers a queue-like
  object (anything with ``put_nowait``), a coroutine function (scheduled once per item) or a
  plain callable (called once per item), and returns ``x``; with no argument it creates and
  returns a new :class:`Subscription` queue. ``get()`` reads a default subscription created on
  first use. Fan-out goes to queues, then plain callbacks, then coroutine callbacks.
- A **consumer** is something you send into. It always reads exactly one current
  subscription: the internal direct-put queue (fed by ``put_nowait``) or any object with an
  async ``get()`` given to ``putSubscription``. Switching cancels the pending read and
  re-reads the new subscription; ``put_nowait`` switches back to direct puts.
- Every object has the events ``ready``, ``error`` and ``closed`` with ``onReady``,
  ``onError`` and ``onClose``; ``await obj`` waits until it is closed.

Where rtcbot's behaviour contradicts its own documentation we follow the documentation; each
choice is pinned by a test in ``tests/client/test_subscriptions.py``:

- ``onReady`` subscribers fire once, when the object becomes ready (rtcbot fires them again
  on close and on failure).
- ``await obj.onError()`` works: it resolves to the error, or to ``None`` if the object closes
  without one (in rtcbot it raises ``TypeError``).
- A listener that raises is logged and skipped; the other listeners still get the item
  (rtcbot aborts the fan-out of that item).
- A callable that returns an awaitable (``functools.partial`` of a coroutine function, an
  object with an async ``__call__``) has that awaitable scheduled, never dropped un-awaited.
- ``close()`` is idempotent and always returns an awaitable, so ``await obj.close()`` works.
- After close, ``get()`` hands out what is still queued in the default subscription, then
  raises :class:`SubscriptionClosed`; a ``get()`` pending on a :class:`Subscription` this
  object created is woken with :class:`SubscriptionClosed` (rtcbot leaves both hanging).
- A producer may hold items that arrive before anyone subscribes (``holdEarly``), and hands
  them to its first subscriber; :class:`Websocket` uses this so a message that arrives before
  the first ``get()`` is not lost.
- A subscription given to ``putSubscription`` that raises :class:`SubscriptionClosed` is
  dropped and the consumer goes back to direct puts (rtcbot spins on it).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Protocol, runtime_checkable

from vidhub.errors import VidhubError

__all__ = [
    "BaseSubscriptionConsumer",
    "BaseSubscriptionProducer",
    "EventHandler",
    "Gettable",
    "QueueLike",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionConsumer",
    "SubscriptionProducer",
    "SubscriptionProducerConsumer",
]

log = logging.getLogger(__name__)


class SubscriptionClosed(VidhubError):
    """The producer or consumer was closed; no more items will come from it."""


@runtime_checkable
class QueueLike(Protocol):
    """Anything a producer can push items into."""

    def put_nowait(self, item: Any, /) -> None: ...


class Gettable(Protocol):
    """Anything a consumer can read items from (``asyncio.Queue``, a producer's subscription)."""

    def get(self) -> Awaitable[Any]: ...


class _Done:
    """An awaitable that is already complete; needs no event loop."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


class _Closed:
    """Sentinel that wakes the readers of a closed :class:`Subscription`."""


_CLOSED = _Closed()


class Subscription(asyncio.Queue[Any]):
    """The default subscription: an unbounded ``asyncio.Queue`` that can be closed.

    After :meth:`close`, ``get()`` returns what is still queued, then raises
    :class:`SubscriptionClosed`; items put after close are ignored.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sub_closed = False

    @property
    def closed(self) -> bool:
        return self._sub_closed

    def close(self) -> None:
        """Mark closed and wake every pending ``get()``. Idempotent."""
        if self._sub_closed:
            return
        self._sub_closed = True
        super().put_nowait(_CLOSED)

    def put_nowait(self, item: Any) -> None:
        if not self._sub_closed:
            super().put_nowait(item)

    async def get(self) -> Any:
        item = await super().get()
        if item is _CLOSED:
            super().put_nowait(_CLOSED)  # keep waking later readers
            raise SubscriptionClosed("subscription closed")
        return item


Subscriber = Any  # a QueueLike, a coroutine function, or a plain callable


def _schedule(result: Awaitable[Any], tasks: set[asyncio.Future[Any]], what: str) -> None:
    task = asyncio.ensure_future(result)
    tasks.add(task)

    def done(t: asyncio.Future[Any]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("subscriber %s failed", what, exc_info=t.exception())

    task.add_done_callback(done)


class _Listeners:
    """An ordered set of subscribers of three kinds, with isolated fan-out."""

    def __init__(self) -> None:
        self.queues: dict[Any, None] = {}
        self.callbacks: dict[Any, None] = {}
        self.coroutines: dict[Any, None] = {}
        self.tasks: set[asyncio.Future[Any]] = set()

    def __bool__(self) -> bool:
        return bool(self.queues or self.callbacks or self.coroutines)

    def _bucket(self, sub: Subscriber) -> dict[Any, None]:
        if callable(getattr(sub, "put_nowait", None)):
            return self.queues
        if inspect.iscoroutinefunction(sub):
            return self.coroutines
        if callable(sub):
            return self.callbacks
        raise TypeError(f"cannot subscribe {sub!r}: not a queue, coroutine function or callable")

    def add(self, sub: Subscriber) -> None:
        self._bucket(sub)[sub] = None

    def remove(self, sub: Subscriber) -> None:
        """Raises ``KeyError`` when ``sub`` was never added (as rtcbot does)."""
        del self._bucket(sub)[sub]

    def clear(self) -> None:
        self.queues.clear()
        self.callbacks.clear()
        self.coroutines.clear()

    def notify(self, *args: Any) -> None:
        """Push ``args`` to queues (``None`` when empty), call callbacks, schedule coroutines.

        A failing subscriber is logged and skipped (STYLE #7).
        """
        item = args[0] if args else None
        for q in list(self.queues):
            try:
                q.put_nowait(item)
            except Exception:
                log.exception("queue subscriber %r failed", q)
        for cb in list(self.callbacks):
            try:
                result = cb(*args)
                if inspect.isawaitable(result):
                    _schedule(result, self.tasks, repr(cb))
            except Exception:
                log.exception("subscriber %r failed", cb)
        for co in list(self.coroutines):
            try:
                _schedule(co(*args), self.tasks, repr(co))
            except Exception:
                log.exception("subscriber %r failed", co)


class EventHandler:
    """The ``ready`` / ``error`` / ``closed`` events every producer and consumer has."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self._ready = False
        self._error: BaseException | None = None
        self._closed = False
        self._closing = False
        self._on_ready = _Listeners()
        self._on_error = _Listeners()
        self._on_close = _Listeners()
        self._ready_waiters: list[asyncio.Future[None]] = []
        self._error_waiters: list[asyncio.Future[BaseException | None]] = []
        self._close_waiters: list[asyncio.Future[None]] = []

    # -- state -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while the object is initialised and processing data."""
        return self._ready

    @property
    def error(self) -> BaseException | None:
        """The error that crashed the object, if any; never reset."""
        return self._error

    @property
    def closed(self) -> bool:
        """True once the object is closed, cleanly or after an error."""
        return self._closed

    # -- subscribing to the events -----------------------------------------------------------

    def onReady(self, subscription: Subscriber = None) -> Any:
        """Without an argument: an awaitable that resolves once ready (at once if ready
        already) and raises the error (or :class:`SubscriptionClosed`) if the object closes
        before it ever became ready. With a callback, coroutine function or queue: register
        it to be notified (no arguments; queues get ``None``) and return it.
        """
        if subscription is not None:
            self._on_ready.add(subscription)
            return subscription
        return self._wait_ready()

    async def _wait_ready(self) -> None:
        if self._ready:
            return
        if self._closed:
            raise self._error or SubscriptionClosed("closed before becoming ready")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready_waiters.append(fut)
        await fut

    def onError(self, subscription: Subscriber = None) -> Any:
        """Without an argument: an awaitable resolving to the error (at once if there is one
        already), or to ``None`` if the object closes without error. With a subscriber:
        register it to receive each error and return it.
        """
        if subscription is not None:
            self._on_error.add(subscription)
            return subscription
        return self._wait_error()

    async def _wait_error(self) -> BaseException | None:
        if self._error is not None or self._closed:
            return self._error
        fut: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._error_waiters.append(fut)
        return await fut

    def onClose(self, subscription: Subscriber = None) -> Any:
        """Without an argument: an awaitable resolving once closed (at once if closed). With
        a subscriber: register it to be notified once on close and return it.
        """
        if subscription is not None:
            self._on_close.add(subscription)
            return subscription
        return self._wait_closed()

    async def _wait_closed(self) -> None:
        if self._closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_waiters.append(fut)
        await fut

    def __await__(self) -> Generator[Any, None, None]:
        """``await obj`` is ``await obj.onClose()``."""
        return self._wait_closed().__await__()

    # -- firing the events (for subclasses) --------------------------------------------------

    def _setReady(self, value: bool = True) -> None:
        if value == self._ready:
            return
        self._ready = value
        if value:
            for fut in self._ready_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._ready_waiters.clear()
            self._on_ready.notify()

    def _setError(self, err: BaseException | None) -> None:
        if err is None:
            return
        self._error = err
        for fut in self._error_waiters:
            if not fut.done():
                fut.set_result(err)
        self._error_waiters.clear()
        self._on_error.notify(err)

    def _teardown(self) -> None:
        """Hook for subclasses: release what they hold; called once, from :meth:`_finish_close`."""

    def _finish_close(self) -> None:
        """Mark closed and notify; idempotent."""
        if self._closed:
            return
        self._closing = True
        self._teardown()
        self._ready = False
        self._closed = True
        for fut in self._ready_waiters:
            if not fut.done():
                fut.set_exception(self._error or SubscriptionClosed("closed before ready"))
                fut.exception()  # a waiter may have gone; do not warn about it
        self._ready_waiters.clear()
        for efut in self._error_waiters:
            if not efut.done():
                efut.set_result(self._error)
        self._error_waiters.clear()
        for cfut in self._close_waiters:
            if not cfut.done():
                cfut.set_result(None)
        self._close_waiters.clear()
        self._on_close.notify()

    def close(self) -> Awaitable[None]:
        """Close the object (idempotent). Returns an awaitable, complete once closed."""
        self._finish_close()
        return _Done()


class BaseSubscriptionProducer(EventHandler):
    """The receive side: ``subscribe``/``unsubscribe``/``unsubscribeAll``/``get``.

    Args:
        defaultSubscriptionClass: factory for ``subscribe()`` with no argument.
        defaultAutosubscribe: create the default subscription at once, so items produced
            before the first ``get()`` are kept.
        holdEarly: keep up to this many items produced while nobody is subscribed, and hand
            them to the first subscriber (0: drop them, as rtcbot does).
        logger: where failures are logged.
    """

    def __init__(
        self,
        defaultSubscriptionClass: Callable[[], Any] = Subscription,
        defaultAutosubscribe: bool = False,
        logger: logging.Logger | None = None,
        *,
        holdEarly: int = 0,
    ) -> None:
        super().__init__(logger)
        self._init_producer(defaultSubscriptionClass, defaultAutosubscribe, holdEarly)

    def _init_producer(self, factory: Callable[[], Any], autosubscribe: bool, hold: int) -> None:
        self._factory = factory
        self._subs = _Listeners()
        self._default: Any = None
        self._created: list[Subscription] = []
        self._early: collections.deque[Any] | None = (
            collections.deque(maxlen=hold) if hold > 0 else None
        )
        if autosubscribe:
            self._default = self.subscribe()

    def subscribe(self, subscription: Subscriber = None) -> Any:
        """Register ``subscription`` (queue-like, coroutine function or callable) and return
        it; with no argument, create, register and return a new default-class queue.
        Subscribing the same object twice registers it once. Items held while nobody was
        subscribed (``holdEarly``) go to the first subscriber, within this call.
        """
        if subscription is None:
            subscription = self._factory()
            if isinstance(subscription, Subscription):
                if self._closing:
                    subscription.close()
                self._created.append(subscription)
        self._subs.add(subscription)
        if self._early is not None:
            early, self._early = self._early, None
            for item in early:
                self._put_nowait(item)
        return subscription

    def unsubscribe(self, subscription: Subscriber = None) -> None:
        """Remove ``subscription``; with no argument, remove and forget the default one
        (a no-op when there is none).

        Raises:
            KeyError: ``subscription`` is not subscribed.
        """
        if subscription is None:
            if self._default is not None:
                self._subs.remove(self._default)
                self._default = None
            return
        self._subs.remove(subscription)
        if subscription is self._default:
            self._default = None

    def unsubscribeAll(self) -> None:
        """Remove every subscription, including the default one."""
        self._subs.clear()
        self._default = None

    async def get(self) -> Any:
        """The next item from the default subscription (created on first call).

        Raises:
            SubscriptionClosed: the producer is closed and the default subscription is empty.
        """
        if self._default is None:
            if self._closing:
                raise SubscriptionClosed("producer closed")
            self._default = self.subscribe()
        return await self._default.get()

    def _put_nowait(self, item: Any) -> None:
        """Fan ``item`` out to every subscription (or hold it until the first one)."""
        if self._early is not None:
            self._early.append(item)
            return
        self._subs.notify(item)

    def _teardown(self) -> None:
        self._close_producer()
        super()._teardown()

    def _close_producer(self) -> None:
        self._early = None
        default = self._default
        for sub in self._created:
            sub.close()
        self._created.clear()
        self._subs.clear()
        # keep the default subscription so get() can drain it before raising
        self._default = default if isinstance(default, Subscription) else None


class SubscriptionProducer(BaseSubscriptionProducer):
    """A producer you can feed by hand with :meth:`put_nowait`."""

    def put_nowait(self, item: Any) -> None:
        """Fan ``item`` out to every subscription."""
        self._put_nowait(item)


class BaseSubscriptionConsumer(EventHandler):
    """The send side: ``put_nowait``/``putSubscription``/``stopSubscription``/``subscription``.

    Subclasses read the items with :meth:`_get`.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__(logger)
        self._init_consumer()

    def _init_consumer(self) -> None:
        self._direct: asyncio.Queue[Any] = asyncio.Queue()
        self._current: Gettable = self._direct
        self._get_task: asyncio.Future[Any] | None = None

    @property
    def subscription(self) -> Any:
        """The subscription given to ``putSubscription``; ``None`` while reading direct puts."""
        return None if self._current is self._direct else self._current

    def put_nowait(self, item: Any) -> None:
        """Send ``item``; stops reading a subscription set by ``putSubscription`` first."""
        if self._current is not self._direct:
            self.stopSubscription()
        self._direct.put_nowait(item)

    def putSubscription(self, subscription: Gettable) -> None:
        """Read items from ``subscription`` (anything with an async ``get()``) from now on."""
        if subscription is self._current:
            return
        self._current = subscription
        self._cancel_get()

    def stopSubscription(self) -> None:
        """Stop reading the current subscription; wait for direct puts (a fresh queue)."""
        self._direct = asyncio.Queue()
        self._current = self._direct
        self._cancel_get()

    def _cancel_get(self) -> None:
        if self._get_task is not None:
            self._get_task.cancel()

    async def _get(self) -> Any:
        """The next item of the current subscription, following switches.

        Raises:
            SubscriptionClosed: the consumer is closed.
        """
        while True:
            if self._closing:
                raise SubscriptionClosed("consumer closed")
            sub = self._current
            task = asyncio.ensure_future(sub.get())
            self._get_task = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                if self._get_task is task:
                    self._get_task = None
            if task.cancelled():
                continue  # switched subscription or closing: look again
            exc = task.exception()
            if isinstance(exc, SubscriptionClosed):
                if self._current is sub and sub is not self._direct:
                    self.stopSubscription()
                continue
            if exc is not None:
                self._log.error("reading subscription %r failed", sub, exc_info=exc)
                raise exc
            return task.result()

    def _teardown(self) -> None:
        self._close_consumer()
        super()._teardown()

    def _close_consumer(self) -> None:
        self._cancel_get()


class SubscriptionConsumer(BaseSubscriptionConsumer):
    """A consumer you can read by hand with :meth:`get`."""

    async def get(self) -> Any:
        """The next item put into this consumer."""
        return await self._get()


class SubscriptionProducerConsumer(BaseSubscriptionConsumer, BaseSubscriptionProducer):
    """Both sides at once: ``get``/``subscribe`` receive, ``put_nowait``/``putSubscription``
    send. ``_teardown`` closes the consumer side, then the producer side.
    """

    def __init__(
        self,
        defaultSubscriptionClass: Callable[[], Any] = Subscription,
        defaultAutosubscribe: bool = False,
        logger: logging.Logger | None = None,
        *,
        holdEarly: int = 0,
    ) -> None:
        EventHandler.__init__(self, logger)
        self._init_consumer()
        self._init_producer(defaultSubscriptionClass, defaultAutosubscribe, holdEarly)
