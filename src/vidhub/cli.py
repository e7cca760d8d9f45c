"""Command line: ``vidhub serve``, ``vidhub app-server``, ``vidhub --version``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Sequence

from vidhub import OPENVIDU_VERSION, __version__
from vidhub.config import Config, ConfigError
from vidhub.errors import VidhubError
from vidhub.log import configure

__all__ = ["main"]

log = logging.getLogger("vidhub")


def _bool_flag(p: argparse.ArgumentParser, name: str, help_: str) -> None:
    p.add_argument(
        f"--{name}",
        dest=name.replace("-", "_"),
        action=argparse.BooleanOptionalAction,
        default=None,
        help=help_,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidhub",
        description="Self-hosted video-session server (OpenVidu 2.x compatible) and event hub.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"vidhub {__version__} (OpenVidu API {OPENVIDU_VERSION})",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the server",
        description="Serve REST (/openvidu/api), signalling (/openvidu), the event hub "
        "(/socket.io/1/) and the web pages on one port. Every flag can also be set "
        "from the environment variable named in its help; flags win.",
    )
    serve.add_argument("--host", help="address to bind (VIDHUB_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (SERVER_PORT; default 4443)")
    serve.add_argument(
        "--secret",
        help="REST/Basic-auth secret for user OPENVIDUAPP (OPENVIDU_SECRET; default MY_SECRET, "
        "allowed only on loopback)",
    )
    serve.add_argument(
        "--data-dir",
        help="directory for the SQLite database (VIDHUB_DATA_DIR; default ./vidhub-data)",
    )
    serve.add_argument(
        "--store",
        choices=("sqlite", "memory", "redis"),
        help="state engine (VIDHUB_STORE; default sqlite, which survives restarts)",
    )
    serve.add_argument("--redis-url", help="Redis URL for --store redis (VIDHUB_REDIS_URL)")
    serve.add_argument(
        "--public-url",
        help="public base URL put in tokens, e.g. https://video.example.com (OPENVIDU_PUBLICURL; "
        "default: the URL each client used)",
    )
    serve.add_argument("--certfile", help="TLS certificate (PEM) to serve HTTPS (VIDHUB_CERTFILE)")
    serve.add_argument("--keyfile", help="TLS private key (PEM) (VIDHUB_KEYFILE)")
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="log level (VIDHUB_LOG_LEVEL; default info)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest request body (VIDHUB_MAX_BODY_BYTES; default 1 MiB)",
    )
    serve.add_argument(
        "--max-inflight",
        type=int,
        help="API requests in progress before 503 + Retry-After (VIDHUB_MAX_INFLIGHT; default 256)",
    )
    serve.add_argument(
        "--media-workers",
        type=int,
        metavar="N",
        help="media worker processes, each forwarding the media of whole sessions "
        "(VIDHUB_MEDIA_WORKERS; default: the usable CPUs; 0 = media in the main process)",
    )
    _bool_flag(
        serve,
        "app-endpoints",
        "serve the tutorial endpoints POST /api/sessions[/{id}/connections] (VIDHUB_APP_ENDPOINTS; "
        "default on when bound to loopback)",
    )

    app = sub.add_parser(
        "app-server",
        help="run the tutorial application server",
        description="The openvidu-basic-python application server: POST /api/sessions and "
        "POST /api/sessions/{id}/connections, backed by an OpenVidu-compatible server.",
    )
    app.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=None, help="port (SERVER_PORT; default 5000)")
    app.add_argument(
        "--openvidu-url",
        default=None,
        help="OpenVidu URL (OPENVIDU_URL; default http://localhost:4443/)",
    )
    app.add_argument(
        "--openvidu-secret",
        default=None,
        help="OpenVidu secret (OPENVIDU_SECRET; default MY_SECRET)",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vidhub.server.app import make_app

    try:
        cfg = Config.from_env(
            host=args.host,
            port=args.port,
            secret=args.secret,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            store=args.store,
            redis_url=args.redis_url,
            public_url=args.public_url,
            certfile=args.certfile,
            keyfile=args.keyfile,
            log_level=args.log_level,
            max_body_bytes=args.max_body_bytes,
            max_inflight=args.max_inflight,
            app_endpoints=args.app_endpoints,
            media_workers=args.media_workers,
        )
    except ConfigError as exc:
        print(f"vidhub: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(cfg.log_level, secrets=[cfg.secret])
    ssl_ctx = None
    try:
        if cfg.tls:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ssl_ctx.load_cert_chain(cfg.certfile, cfg.keyfile)
            except (OSError, ssl.SSLError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ConfigError(
                    f"cannot load the TLS certificate {cfg.certfile} with key {cfg.keyfile}: "
                    f"{why}; check that both are readable PEM files and belong together"
                ) from None
        app = make_app(cfg)
    except (ConfigError, OSError, ssl.SSLError) as exc:
        print(f"vidhub: cannot start: {exc}", file=sys.stderr)
        return 2
    _install_uvloop()
    scheme = "https" if ssl_ctx else "http"
    log.info(
        "vidhub %s starting on %s://%s:%d (store: %s)",
        __version__,
        scheme,
        cfg.host,
        cfg.port,
        cfg.store,
    )
    from vidhub.server.limits import LIMITS
    from vidhub.server.tcpguard import TcpGuard, fd_bounded, run_forever

    guard = TcpGuard(
        app[LIMITS],
        max_connections=fd_bounded(cfg.max_tcp_connections),
        max_per_ip=cfg.max_tcp_connections_per_ip,
        header_timeout_s=cfg.header_timeout_s,
    )
    try:
        run_forever(app, guard, cfg.host, cfg.port, ssl_ctx)
    except VidhubError as exc:  # a resource failed to start: the store, Redis
        print(f"vidhub: cannot start: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(
            f"vidhub: cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


def _app_server(args: argparse.Namespace) -> int:
    from aiohttp import web

    from vidhub.server.appserver import make_app_server

    configure("info")
    port = args.port or int(os.environ.get("SERVER_PORT") or 5000)
    url = args.openvidu_url or os.environ.get("OPENVIDU_URL") or "http://localhost:4443/"
    secret = args.openvidu_secret or os.environ.get("OPENVIDU_SECRET") or "MY_SECRET"
    host = args.host or "127.0.0.1"
    _install_uvloop()
    log.info("application server on http://%s:%d using %s", host, port, url)
    web.run_app(make_app_server(url, secret), host=host, port=port, print=None, access_log=None)
    return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidhub`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "app-server":
        return _app_server(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
