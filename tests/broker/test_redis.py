"""Redis-engine specifics: what the shared suite cannot stage (a Redis outage and restart)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from tests.broker.test_broker import Inbox
from tests.support.proc import free_port
from tests.support.redis import RedisServer, redis_server_binary

pytestmark = pytest.mark.redis

redis_broker = pytest.importorskip("vidhub.broker.redis")


async def test_start_against_no_server_is_a_clear_error() -> None:
    from vidhub.broker.base import BrokerUnavailable

    broker = redis_broker.RedisBroker(f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    with pytest.raises(BrokerUnavailable) as err:
        await broker.start()
    assert "s3cret" not in str(err.value)
    await broker.close()


class _Reconnected(logging.Handler):
    """Sets an event when the broker logs that its pub/sub connection is back."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "re-established" in record.getMessage():
            self.event.set()


async def test_subscriptions_survive_a_redis_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vidhub.broker.base import BrokerUnavailable

    srv = RedisServer(tmp_path, redis_server_binary()).start()
    listener = redis_broker.RedisBroker(srv.url)
    publisher = redis_broker.RedisBroker(srv.url)
    back = _Reconnected()
    caplog.set_level(logging.INFO, logger="vidhub.broker.redis")
    logging.getLogger("vidhub.broker.redis").addHandler(back)
    try:
        await listener.start()
        await publisher.start()
        ch, inbox = f"test:{uuid.uuid4().hex}", Inbox()
        await listener.subscribe(ch, inbox)
        assert await publisher.publish(ch, b"before") == 1
        await inbox.wait_for(1)

        srv.stop()
        with pytest.raises(BrokerUnavailable):
            await publisher.publish(ch, b"while down")
        srv.start()

        # "re-established" is logged once every channel's SUBSCRIBE is confirmed again
        await asyncio.wait_for(back.event.wait(), 10)
        assert await publisher.publish(ch, b"after") == 1
        assert await inbox.wait_for(2) == [b"before", b"after"]
        assert "connection lost" in caplog.text
    finally:
        logging.getLogger("vidhub.broker.redis").removeHandler(back)
        await publisher.close()
        await listener.close()
        srv.stop()


async def test_many_concurrent_subscriptions_are_each_confirmed(
    broker_redis: RedisServer,
) -> None:
    """Each ``subscribe`` returns only once Redis has it: no first message is lost."""
    listener = redis_broker.RedisBroker(broker_redis.url)
    publisher = redis_broker.RedisBroker(broker_redis.url)
    await listener.start()
    await publisher.start()
    try:
        channels = [f"test:{uuid.uuid4().hex}" for _ in range(50)]
        inboxes = [Inbox() for _ in channels]
        await asyncio.gather(
            *(listener.subscribe(c, i) for c, i in zip(channels, inboxes, strict=True))
        )
        counts = [await publisher.publish(c, c.encode()) for c in channels]
        assert counts == [1] * len(channels)
        for c, inbox in zip(channels, inboxes, strict=True):
            assert await inbox.wait_for(1) == [c.encode()]
    finally:
        await publisher.close()
        await listener.close()
