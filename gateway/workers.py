"""``[gateway] workers = N``: one gateway served by N processes on the same ports.

Python runs one core per process, so a gateway uses a machine's cores by running several
processes that accept on the same sockets: grpc sets SO_REUSEPORT on Linux and the kernel
spreads new connections over the processes. The process started by ``crossway gateway run``
is the *primary*: it binds first (port 0 gets its port from the OS here), then starts N-1
*worker* processes that bind exactly the ports it got. Every process is a whole gateway
(pipelines, audit sink, configuration subscription); what they must share they share outside
the process: NATS (the primary's URL, embedded or not), the replay window and the quota buckets
(SQLite files in the data directory, see ``crossway.security.shared_replay`` and
``gateway.provider.quotas``). Each worker spools audit records in
its own directory, so two processes never write one spool segment.

The primary relays its workers' output, prefixed, and stops them (SIGTERM: they drain) before
draining itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from crossway.core.errors import ConfigError
from crossway.metrics import mark_process_dead
from gateway.shared.config import ENV_NATS_URL, GatewayConfig

__all__ = ["WorkerPool", "WorkerRole"]


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What a worker is told by its primary: its index and the ports to bind."""

    index: int
    client_port: int
    client_mtls_port: int
    peer_port: int
    admin_port: int

    def format(self) -> str:
        return f"{self.index}:{self.client_port}:{self.client_mtls_port}:{self.peer_port}:{self.admin_port}"

    @classmethod
    def parse(cls, text: str) -> WorkerRole:
        try:
            index, client, mtls, peer, admin = (int(part) for part in text.split(":"))
        except ValueError as exc:
            raise ConfigError(f"--worker {text!r} is not INDEX:CLIENT:MTLS:PEER:ADMIN") from exc
        return cls(index, client, mtls, peer, admin)

    def apply(self, config: GatewayConfig) -> GatewayConfig:
        """The primary's configuration, bound to its ports, with this worker's own spool."""
        host = config.client_listen.rpartition(":")[0]
        peer_host = config.peer_listen.rpartition(":")[0]
        admin = config.admin
        if admin is not None and self.admin_port:
            admin = replace(admin, listen=f"{admin.listen.rpartition(':')[0]}:{self.admin_port}")
        return replace(
            config,
            client_listen=f"{host}:{self.client_port}",
            peer_listen=f"{peer_host}:{self.peer_port}",
            admin=admin,
            audit=replace(config.audit, spool_dir=config.audit.spool_dir / f"worker-{self.index}"),
        )


class WorkerPool:
    def __init__(self, config_path: Path, config: GatewayConfig, nats_url: str) -> None:
        self._config_path = config_path
        self._config = config
        self._nats_url = nats_url
        self._procs: list[asyncio.subprocess.Process] = []
        self._relays: list[asyncio.Task[None]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def start(self, ports: WorkerRole, timeout_s: float = 60.0) -> None:
        """Start workers 1..N-1 on the primary's ports; return once every one is ready."""
        # The workers use the primary's NATS (embedded or configured), named in the environment.
        env = {**os.environ, ENV_NATS_URL: self._nats_url, "PYTHONUNBUFFERED": "1"}
        ready: list[asyncio.Future[None]] = []
        for index in range(1, self._config.workers):
            role = replace(ports, index=index)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "crossway.cli",
                "gateway",
                "run",
                "--config",
                str(self._config_path),
                "--worker",
                role.format(),
                "--log-format",
                self._config.log_format,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
            self._procs.append(proc)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            ready.append(future)
            self._relays.append(asyncio.create_task(self._relay(index, proc, future), name=f"worker-{index}"))
        try:
            await asyncio.wait_for(asyncio.gather(*ready), timeout_s)
        except TimeoutError:
            raise ConfigError(
                f"gateway {self._config.gateway_id}: a worker process did not start within {timeout_s:.0f} s",
                hint="see the [worker N] lines above",
            ) from None

    @staticmethod
    async def _relay(index: int, proc: asyncio.subprocess.Process, ready: asyncio.Future[None]) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            # A JSON log line names its worker itself, and must stay one JSON object.
            print(line if line.startswith("{") else f"[worker {index}] {line}", flush=True)
            if not ready.done() and line.startswith(f"worker {index} ready"):
                ready.set_result(None)
        code = await proc.wait()
        if not ready.done():
            ready.set_exception(ConfigError(f"worker {index} exited with code {code} before it was ready"))

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker (each drains its calls and audit records), then wait."""
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            mark_process_dead(proc.pid)  # its live gauges leave /metrics; its counts stay
        for relay in self._relays:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(relay, 5)
