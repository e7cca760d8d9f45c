"""The media worker process: session routers behind a control channel.

Started by :class:`~vidhub.media.pool.WorkerPool` as ``python -m vidhub.media.worker --fd N``
with one end of a Unix socket pair as file descriptor ``N``. It answers the requests of
:mod:`vidhub.protocol.mediactl` on that socket:

========================  ================================================================
op                        what it does (``router`` names the router in every request)
========================  ================================================================
``open``                  create a :class:`~vidhub.sfu.router.Router` with the given ICE
                          servers, host / announced addresses and forced codec
``publish``               ``Router.publish``; answers the SDP answer
``subscribe``             ``Router.subscribe``; answers the SDP answer
``add_ice_candidate``     ``Router.add_ice_candidate``
``close_producer``        ``Router.close_producer``
``close_consumer``        ``Router.close_consumer``
``close_router``          ``Router.close``; forgotten once its recordings are collected
``start_recording``       ``Router.start_recording``; answers the file path
``start_feed``            ``Router.start_feed`` (COMPOSED: frames to the composer's socket)
``stop_recording``        ``Router.stop_recording``; answers the RecordedStream (or null)
``stats``                 the router's current :class:`~vidhub.sfu.stats.RouterStats`
``ping``                  answered at once from the read loop: the heartbeat
========================  ================================================================

and pushes events: ``hello`` once, ``load`` every :data:`LOAD_INTERVAL_S` (CPU seconds,
packet counters, every router's stats) and ``endpoint_failed`` when ICE/DTLS of a leg fails.
Errors go back as the error class's name and message, so the caller raises the same kind.

Lifetime: the worker exits when its control channel closes (the main process exited or
closed it), after closing its routers; it also asks the kernel to kill it when its parent
dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of ``vidhub serve`` leaves no worker behind.
It ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the main
process shuts the workers down itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

from vidhub.errors import VidhubError
from vidhub.protocol.mediactl import ControlProtocolError, Decoder, Event, Request, Response, encode
from vidhub.sfu.stats import router_stats_to_dict

__all__ = ["LOAD_INTERVAL_S", "main", "serve"]

log = logging.getLogger("vidhub.media.worker")

#: Seconds between two ``load`` events.
LOAD_INTERVAL_S = 1.0
#: Seconds the worker gives its routers to close once its channel is gone.
CLOSE_GRACE_S = 5.0

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits; exit now if it already has.

    A no-op where ``prctl`` is unavailable (the closed control channel still ends the worker).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Worker:
    """The routers of this process and the request handlers over them."""

    def __init__(self, send: Callable[[bytes], None], index: int) -> None:
        from vidhub.sfu.router import Router

        self._send = send
        self.index = index
        self.routers: dict[str, Router] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, name: str, **args: Any) -> None:
        self._send(encode(Event(name, args)))

    def _reply(self, msg: Response) -> None:
        try:
            data = encode(msg)
        except ControlProtocolError as exc:
            data = encode(Response.failure(msg.id, "VidhubError", str(exc)))
        self._send(data)

    def dispatch(self, req: Request) -> None:
        """Handle one request: the quick ones at once, the others in their own task."""
        if req.op == "ping":
            self._reply(Response.success(req.id, {"routers": len(self.routers)}))
            return
        if req.op == "open":
            self._run_now(req, self._open)
            return
        if req.op == "stats":
            self._run_now(req, self._stats)
            return
        handler = self._async_ops.get(req.op)
        if handler is None:
            self._reply(Response.failure(req.id, "BadRequest", f"unknown op {req.op!r}"))
            return
        task = asyncio.get_running_loop().create_task(self._run(req, handler(self, req.args)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_now(self, req: Request, fn: Callable[[dict[str, Any]], Any]) -> None:
        try:
            self._reply(Response.success(req.id, fn(req.args)))
        except Exception as exc:
            self._reply(self._failure(req.id, exc))

    async def _run(self, req: Request, work: Awaitable[Any]) -> None:
        try:
            value = await work
        except Exception as exc:
            self._reply(self._failure(req.id, exc))
        else:
            self._reply(Response.success(req.id, value))

    def _failure(self, id_: int, exc: Exception) -> Response:
        if isinstance(exc, VidhubError):
            return Response.failure(id_, type(exc).__name__, exc.message)
        log.exception("media worker %d: request failed", self.index)
        return Response.failure(id_, "VidhubError", "internal media worker error")

    # -- ops -----------------------------------------------------------------------------

    def _router(self, args: dict[str, Any]) -> Any:
        router = self.routers.get(str(args.get("router")))
        if router is None:
            from vidhub.errors import NotAcceptable

            raise NotAcceptable("media router is closed")
        return router

    def _open(self, args: dict[str, Any]) -> None:
        from aiortc import RTCIceServer

        from vidhub.sfu.router import Router

        rid = str(args["router"])
        if rid in self.routers:
            return
        hosts = args.get("host_addresses")
        router = Router(
            ice_servers=[RTCIceServer(**s) for s in args.get("ice_servers") or ()],
            host_addresses=list(hosts) if hosts is not None else None,
            announced_address=args.get("announced_address") or None,
            forced_video_codec=args.get("forced_video_codec") or None,
        )

        def failed(endpoint_id: str) -> None:
            self.emit("endpoint_failed", router=rid, endpoint=endpoint_id)

        router.on_endpoint_failed = failed
        self.routers[rid] = router

    def _stats(self, args: dict[str, Any]) -> dict[str, Any]:
        return router_stats_to_dict(self._router(args).stats())

    async def _publish(self, args: dict[str, Any]) -> str:
        answer: str = await self._router(args).publish(str(args["id"]), str(args["sdp"]))
        return answer

    async def _subscribe(self, args: dict[str, Any]) -> str:
        answer: str = await self._router(args).subscribe(
            str(args["id"]), str(args["producer"]), str(args["sdp"])
        )
        return answer

    async def _add_ice_candidate(self, args: dict[str, Any]) -> None:
        mid = args.get("sdp_mid")
        index = args.get("sdp_mline_index")
        await self._router(args).add_ice_candidate(
            str(args["id"]),
            str(args.get("candidate") or ""),
            str(mid) if mid is not None else None,
            int(index) if index is not None else None,
        )

    async def _close_producer(self, args: dict[str, Any]) -> None:
        router = self.routers.get(str(args.get("router")))
        if router is not None:
            await router.close_producer(str(args["id"]))

    async def _close_consumer(self, args: dict[str, Any]) -> None:
        router = self.routers.get(str(args.get("router")))
        if router is not None:
            await router.close_consumer(str(args["id"]))

    async def _close_router(self, args: dict[str, Any]) -> None:
        rid = str(args.get("router"))
        router = self.routers.get(rid)
        if router is not None:
            await router.close()
            if not router.recorder_ids():  # else kept until stop_recording collects them
                self.routers.pop(rid, None)

    async def _start_recording(self, args: dict[str, Any]) -> str:
        size = args.get("fallback_size") or (640, 480)
        path: str = await self._router(args).start_recording(
            str(args["recorder"]),
            str(args["producer"]),
            str(args["path_stem"]),
            audio=bool(args.get("audio", True)),
            video=bool(args.get("video", True)),
            fallback_size=(int(size[0]), int(size[1])),
        )
        return path

    async def _start_feed(self, args: dict[str, Any]) -> None:
        await self._router(args).start_feed(
            str(args["recorder"]),
            str(args["producer"]),
            str(args["socket"]),
            audio=bool(args.get("audio", True)),
            video=bool(args.get("video", True)),
        )

    async def _stop_recording(self, args: dict[str, Any]) -> dict[str, Any] | None:
        rid = str(args.get("router"))
        router = self.routers.get(rid)
        if router is None:
            return None
        result = await router.stop_recording(str(args["recorder"]))
        if router.closed and not router.recorder_ids():
            self.routers.pop(rid, None)
        return asdict(result) if result is not None else None

    _async_ops: dict[str, Callable[[Worker, dict[str, Any]], Awaitable[Any]]] = {
        "publish": _publish,
        "subscribe": _subscribe,
        "add_ice_candidate": _add_ice_candidate,
        "close_producer": _close_producer,
        "close_consumer": _close_consumer,
        "close_router": _close_router,
        "start_recording": _start_recording,
        "start_feed": _start_feed,
        "stop_recording": _stop_recording,
    }

    # -- load and shutdown -----------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """CPU seconds used so far, packet totals and every router's stats."""
        routers = {rid: r.stats() for rid, r in self.routers.items() if not r.closed}
        return {
            "cpu": _cpu_seconds(),
            "in": sum(s.packets_in for s in routers.values()),
            "out": sum(s.packets_out for s in routers.values()),
            "routers": {rid: router_stats_to_dict(s) for rid, s in routers.items()},
        }

    async def push_load(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.emit("load", **self.load())

    async def close(self) -> None:
        """Close every router and wait for the requests in progress."""
        routers, self.routers = list(self.routers.values()), {}
        await asyncio.gather(*(r.close() for r in routers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(sock: socket.socket, index: int, load_interval_s: float = LOAD_INTERVAL_S) -> None:
    """Serve the control channel on ``sock`` until it closes, then close every router."""
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)

    def send(data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    worker = Worker(send, index)
    worker.emit("hello", pid=os.getpid(), index=index)
    pusher = asyncio.get_running_loop().create_task(worker.push_load(load_interval_s))
    decoder = Decoder()
    try:
        while data := await reader.read(1 << 16):
            for msg in decoder.feed(data):
                if isinstance(msg, Request):
                    worker.dispatch(msg)
    except ControlProtocolError as exc:
        log.error("media worker %d: control channel broken: %s", index, exc)
    except ConnectionError:
        pass  # the main process is gone: same as end of stream
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        try:
            await asyncio.wait_for(worker.close(), CLOSE_GRACE_S)
        except TimeoutError:
            log.warning("media worker %d: routers did not close in time", index)
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m vidhub.media.worker``."""
    ap = argparse.ArgumentParser(prog="vidhub-media-worker")
    ap.add_argument("--fd", type=int, required=True, help="control socket file descriptor")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--parent", type=int, default=0, help="pid of the main process")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--load-interval", type=float, default=LOAD_INTERVAL_S)
    args = ap.parse_args(argv)
    if args.parent:
        die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from vidhub.log import configure

    configure(args.log_level)
    try:
        import uvloop
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sock = socket.socket(fileno=args.fd)
    asyncio.run(serve(sock, args.index, args.load_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
