"""``crossway console``: the web console, a process of its own (never on the data path)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError

__all__ = ["add_commands"]


def _bind(listen: str) -> socket.socket:
    """Bound before the app exists, so its URL (OIDC redirect, Origin check) is known; uvicorn serves it."""
    host, _, port = listen.rpartition(":")
    try:
        address = socket.getaddrinfo(host.strip("[]") or "127.0.0.1", int(port), type=socket.SOCK_STREAM)[0]
        # proto = IPPROTO_TCP as getaddrinfo says: asyncio sets TCP_NODELAY only on such sockets, and
        # without it a small page on a kept-alive connection waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(address[0], address[1], address[2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address[4])
        sock.listen(128)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc}", hint="pick a free host:port (port 0: any)") from exc
    return sock


def _run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from console.app import create_app
        from console.config import load_config
    except ImportError as exc:  # the extra is not installed
        raise ConfigError(
            f"the console needs its optional dependencies ({exc.name})", hint="pip install 'crossway[console]'"
        ) from exc
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("grpc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = load_config(Path(args.config), os.environ)
    sock = _bind(config.listen)
    host, port = sock.getsockname()[:2]
    url = config.public_url or f"http://{host}:{port}"

    def ready() -> None:
        print(f"console listening on {url}/ (bound {host}:{port})", flush=True)

    app = create_app(config, url, on_ready=ready)
    # No access log: its lines would carry query strings (search filters; the sign-in callback's
    # authorization code). The console logs method, path, status and time itself.
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, proxy_headers=False)
    )
    asyncio.run(server.serve(sockets=[sock]))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("console", help="the web console for auditors, policy admins and operators")
    p.add_argument("--config", required=True, help="console.toml (see console/config.py)")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(handler=_run)
