"""Prometheus metrics for every Crossway process: where they are kept, and ``/metrics``.

A gateway with ``[gateway] workers = N`` is N processes, and a scrape reaches only one of them
(the primary, which serves ``/metrics``), so each process's values must be visible to it:
prometheus_client's *multiprocess mode* keeps each process's values in memory-mapped files of
one directory, and the collector sums them at scrape time. The mode is chosen when
prometheus_client is first imported, from the environment variable ``PROMETHEUS_MULTIPROC_DIR``
(its only switch). So:

- :func:`use_multiprocess_dir` sets that variable (before anything imports prometheus_client;
  it refuses when it is too late) and, in the primary, empties the directory — a previous run's
  files would otherwise be added to this run's counts;
- the workers, started by the primary, inherit the variable and call it without cleaning;
- :class:`MetricsServer` serves ``/metrics`` (the text exposition format) from that directory,
  or from the process's own registry for single-process tools (registry, audit index).

Nothing here imports prometheus_client at module level: importing this module never fixes the
mode. Metric names start with ``crossway_``; no label ever holds a payload, a token or a user id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError

__all__ = ["MULTIPROC_ENV", "MetricsServer", "mark_process_dead", "multiprocess_dir", "use_multiprocess_dir"]

log = logging.getLogger(__name__)

# prometheus_client's switch for its multiprocess mode (read by prometheus_client.values at import).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_directory: Path | None = None


def multiprocess_dir() -> Path | None:
    """The directory this process's values go to, once :func:`use_multiprocess_dir` chose it."""
    return _directory


def use_multiprocess_dir(directory: Path, *, clean: bool) -> None:
    """Keep this process's (and its children's) metric values in ``directory``.

    ``clean`` (the primary, at start): remove the files of earlier runs first. Raises
    ConfigError when prometheus_client was already imported in single-process mode: its values
    would then stay invisible to the scrape, a silent undercount.
    """
    global _directory
    directory = directory.resolve()
    if "prometheus_client.values" in sys.modules and _directory != directory:
        raise ConfigError(
            "prometheus_client was imported before its multiprocess directory was set",
            hint="call crossway.metrics.use_multiprocess_dir before anything creates a metric",
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if clean:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    # Written, not read: the environment is prometheus_client's only way to be told, and the
    # worker processes the primary starts inherit it.
    os.environ[MULTIPROC_ENV] = str(directory)
    _directory = directory


def mark_process_dead(pid: int) -> None:
    """A worker ended: drop its live gauges (its counters stay, they are part of the totals)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"metrics listen address {listen!r} is not HOST:PORT", hint='e.g. "127.0.0.1:9464"')
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means every address


class MetricsServer:
    """``GET /metrics`` on ``listen`` (HOST:PORT, port 0 = any), in a thread of its own.

    In multiprocess mode it sums the files of every process of the directory; otherwise it
    serves this process's default registry. Plain HTTP: the values are operational counts, and
    the listener belongs on a management network (docs/operations.md).
    """

    def __init__(self, listen: str) -> None:
        self._host, self._port = _split_listen(listen)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self._host if ":" not in self._host else f"[{self._host}]"
        return f"http://{host}:{self._port}/metrics"

    async def start(self) -> None:
        from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        directory = multiprocess_dir()
        registry: Any = REGISTRY
        if directory is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        try:
            self._server, self._thread = start_http_server(self._port, addr=self._host, registry=registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {self._host}:{self._port}: {exc.strerror}",
                hint="choose a free port for the metrics listener",
            ) from exc
        self._port = int(self._server.server_port)
        log.info("metrics on %s", self.url)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() waits for serve_forever to notice; off the event loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
