"""The composition root: reads Config, builds the engines, wires every feature into one app.

Only this module (and ``cli``) reads :class:`Config`; everything else receives plain values or
interfaces. Every object is finished when built: the ledger first, then the rooms over it,
the cluster relay in front of the rooms (on a shared Redis), and the SessionManager over the
ledger and that gateway; the one clock reaches them all. Resources are opened and closed in
``cleanup_ctx`` generators, so start-up and shutdown run in a defined order, and ``READY``
flips when the store is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from vidhub.broker.base import Broker
from vidhub.broker.presence import Presence
from vidhub.clock import Clock, SystemClock
from vidhub.cluster import ClusterGateway
from vidhub.cluster.directory import NodeDirectory
from vidhub.cluster.placement import ClusterPlacement
from vidhub.config import Config, ConfigError, is_loopback_host
from vidhub.core.events import EventBus, ServerEvent
from vidhub.core.live import LiveGateway
from vidhub.core.store import Store
from vidhub.hub import HubBridge
from vidhub.manager import SessionLedger, SessionManager
from vidhub.protocol.cluster import NodeInfo
from vidhub.protocol.openvidu_rest import parse_ice_servers
from vidhub.rooms import Rooms, RouterFactory, sfu_router_factory
from vidhub.server import appserver, signalling
from vidhub.server.eventhub import EVENTHUB, setup_eventhub
from vidhub.server.keys import CLOCK, CONFIG, EVENTS, MANAGER, READY
from vidhub.server.lifecycle import setup_lifecycle
from vidhub.server.limits import LimitCounters, LoopLag, SocketCaps, setup_limits
from vidhub.server.media import media_health, setup_media_workers
from vidhub.server.middlewares import (
    auth_middleware,
    cors_middleware,
    error_middleware,
    shed_middleware,
)
from vidhub.server.recording import setup_recording
from vidhub.server.rest import config as rest_config
from vidhub.server.rest import recordings as rest_recordings
from vidhub.server.rest import sessions as rest_sessions
from vidhub.server.web import setup_web
from vidhub.server.webhooks import setup_webhooks
from vidhub.store import MemoryStore, SqliteStore

__all__ = ["make_app", "make_broker", "make_router_factory", "make_store"]

log = logging.getLogger(__name__)


def make_store(cfg: Config) -> Store:
    """Choose the store engine once, from config.

    Raises:
        ConfigError: ``redis`` was chosen but the ``redis`` package is not installed.
    """
    if cfg.store == "redis":
        # imported here: only Redis deployments need the ``vidhub[redis]`` extra
        try:
            from vidhub.store.redis import RedisStore
        except ImportError as exc:
            raise ConfigError(
                "--store redis needs the redis package: pip install 'vidhub[redis]'"
            ) from exc
        return RedisStore(cfg.redis_url)
    if cfg.db_path is not None:
        return SqliteStore(cfg.db_path)
    return MemoryStore()


def make_broker(cfg: Config) -> Broker | None:
    """The bus between nodes: Redis pub/sub on the store's Redis; ``None`` for one node."""
    if cfg.store != "redis":
        return None
    from vidhub.broker.redis import RedisBroker  # make_store already checked the extra

    return RedisBroker(cfg.redis_url)


def _media_hosts(cfg: Config) -> list[str] | None:
    """The addresses media sockets bind to: configured, else loopback on a loopback host."""
    return list(cfg.ice_host_addresses) or (["127.0.0.1"] if is_loopback_host(cfg.host) else None)


def make_router_factory(cfg: Config) -> RouterFactory:
    """The media plane, chosen once: the in-process SFU configured from ``cfg``."""
    return sfu_router_factory(
        ice_servers=parse_ice_servers(cfg.ice_servers),
        host_addresses=_media_hosts(cfg),
        announced_address=cfg.ice_announced_address or None,
        forced_video_codec=cfg.forced_video_codec,
    )


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 once the store is loaded and the server can serve, else 503
    (``STARTING``, or ``DOWN`` with ``"redis": "unreachable"`` while a cluster node cannot
    reach Redis)."""
    directory = request.app.get(DIRECTORY)
    if directory is not None and not directory.reachable:
        return web.json_response({"status": "DOWN", "redis": "unreachable"}, status=503)
    if request.app[READY].get("ready"):
        return web.json_response({"status": "UP", **media_health(request.app)})
    return web.json_response({"status": "STARTING"}, status=503)


#: The node directory of a cluster node (absent on a single node).
DIRECTORY = web.AppKey("node_directory", NodeDirectory)


def make_app(
    cfg: Config,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    router_factory: RouterFactory | None = None,
) -> web.Application:
    """Build the vidhub application for ``cfg``.

    Args:
        cfg: validated configuration.
        clock: injectable clock (tests); the system clock by default.
        store: an engine to use instead of the one ``cfg`` names (tests).
        router_factory: a media plane to use instead of :func:`make_router_factory`'s (tests).
    """
    limits, lag = LimitCounters(), LoopLag()
    app = web.Application(
        middlewares=[
            shed_middleware(
                cfg.max_inflight, lag=lag, budget_s=cfg.shed_budget_ms / 1000.0, counters=limits
            ),
            cors_middleware,
            error_middleware,
            auth_middleware(cfg.secret),
        ],
        client_max_size=cfg.max_body_bytes,
    )
    the_clock = clock or SystemClock()
    events = EventBus()
    the_store = store or make_store(cfg)
    ledger = SessionLedger(
        the_store,
        the_clock,
        events,
        ice_servers=parse_ice_servers(cfg.ice_servers),
        node_id=cfg.effective_node_id,
        token_ttl_s=cfg.token_ttl_s,
        max_sessions=cfg.max_sessions,
        max_connections_per_session=cfg.max_connections_per_session,
    )
    if router_factory is None:
        # media worker processes (started and stopped with the app, after the rooms), or
        # the routers in this process
        workers = setup_media_workers(
            app,
            cfg,
            ice_servers=parse_ice_servers(cfg.ice_servers),
            host_addresses=_media_hosts(cfg),
        )
        router_factory = workers.router if workers is not None else make_router_factory(cfg)
    rooms = Rooms(ledger, router_factory)
    broker = make_broker(cfg)
    relay = (
        ClusterGateway(rooms, broker, the_store, cfg.effective_node_id)
        if broker is not None
        else None
    )
    live: LiveGateway = relay or rooms
    cluster = _make_cluster(app, cfg, rooms) if broker is not None else None
    manager = SessionManager(ledger, live, cluster.placement if cluster is not None else None)
    app[CONFIG] = cfg
    app[CLOCK] = the_clock
    app[EVENTS] = events
    app[MANAGER] = manager
    app[READY] = {"ready": False}

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await the_store.start()
        gone = await manager.recover_after_restart()
        if gone:
            log.info("dropped %d connections left active by a previous run", len(gone))
        yield
        await the_store.close()

    async def gc_ctx(app: web.Application) -> AsyncIterator[None]:
        task = None
        if cfg.garbage_interval_s > 0:
            task = asyncio.create_task(_gc_loop(manager, cfg))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ready_ctx(app: web.Application) -> AsyncIterator[None]:
        app[READY]["ready"] = True
        yield
        app[READY]["ready"] = False

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(gc_ctx)

    app.router.add_get("/health", health)
    app.router.add_routes(rest_sessions.routes)
    app[rest_sessions.LISTINGS] = rest_sessions.Listings()
    app.router.add_routes(rest_config.routes)
    app.router.add_routes(rest_recordings.routes)
    if cfg.serve_app_endpoints:
        appserver.add_app_routes(
            app, appserver.LocalBackend(manager, cfg.forced_video_codec, cfg.allow_transcoding)
        )
    setup_limits(app, limits, lag, SocketCaps(cfg.max_websockets, cfg.max_websockets_per_ip))
    _setup_features(app, rooms, broker, relay, cluster)

    # last: the server is ready only once every feature above has started
    app.cleanup_ctx.append(ready_ctx)
    return app


def _setup_features(
    app: web.Application,
    rooms: Rooms,
    broker: Broker | None,
    relay: ClusterGateway | None,
    cluster: _Cluster | None,
) -> None:
    """Mount the features that share the port: each adds its routes and cleanup contexts.

    One line per feature; each ``setup_*`` lives in its own module under ``server/``.
    """
    setup_eventhub(app)
    setup_lifecycle(app)
    setup_webhooks(app)
    signalling.setup_signalling(app, rooms)
    setup_recording(app)
    if broker is not None and relay is not None and cluster is not None:
        _setup_cluster(app, broker, relay, cluster)
    setup_web(app)


@dataclass(frozen=True, slots=True)
class _Cluster:
    presence: Presence
    directory: NodeDirectory
    placement: ClusterPlacement


def node_url(cfg: Config) -> str:
    """The base URL this node heartbeats for its tokens: ``--public-url``, else the address
    it listens on (empty when that is a wildcard address nobody can dial)."""
    if cfg.public_url:
        return cfg.public_url.rstrip("/")
    if cfg.host in ("", "0.0.0.0", "::"):
        return ""
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"{'https' if cfg.certfile else 'http'}://{host}:{cfg.port}"


def _make_cluster(app: web.Application, cfg: Config, rooms: Rooms) -> _Cluster:
    """Presence, heartbeats and placement on the shared Redis (started with the app)."""
    from vidhub.broker.redis_presence import RedisPresence  # make_store checked the extra

    presence = RedisPresence(cfg.redis_url)
    url = node_url(cfg)
    last = [time.monotonic(), 0]

    def info() -> NodeInfo:
        publishers, packets = rooms.load()
        now = time.monotonic()
        rate = int((packets - last[1]) / max(now - last[0], 1e-3)) if packets >= last[1] else 0
        last[:] = [now, packets]
        return NodeInfo(url, publishers, rate)

    async def on_dead(node_id: str) -> None:
        ended = await app[MANAGER].end_node(node_id, "nodeCrashed")
        log.warning("node %s is gone: ended its %d session(s)", node_id, len(ended))

    directory = NodeDirectory(presence, cfg.effective_node_id, info, on_dead)
    return _Cluster(presence, directory, ClusterPlacement(presence, directory))


def _setup_cluster(
    app: web.Application, broker: Broker, gateway: ClusterGateway, cluster: _Cluster
) -> None:
    """On a shared Redis, start the broker, the relay, the hub bridge and the node directory
    with the app; ``/health`` reports Redis while it is unreachable."""
    bridge = HubBridge(app[EVENTHUB].hub, broker, gateway.node_id)
    app[DIRECTORY] = cluster.directory

    async def forget_placement(event: ServerEvent) -> None:
        if event.name == "sessionDestroyed" and event.session_id is not None:
            await cluster.placement.forget(event.session_id)

    app[EVENTS].subscribe(forget_placement)

    async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
        await broker.start()
        await gateway.start()
        await bridge.start()
        await cluster.presence.start()
        await cluster.directory.start()
        yield
        await cluster.directory.close()
        await cluster.presence.close()
        await bridge.close()
        await gateway.close()
        await broker.close()

    app.cleanup_ctx.append(cluster_ctx)


async def _gc_loop(manager: SessionManager, cfg: Config) -> None:
    while True:
        await asyncio.sleep(cfg.garbage_interval_s)
        try:
            removed = await manager.collect_garbage(cfg.garbage_threshold_s)
            if removed:
                log.info("garbage collector removed %d never-joined sessions", len(removed))
        except Exception:
            log.exception("session garbage collection failed")
