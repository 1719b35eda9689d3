"""Child processes the demo (and the tests) start and own: read their lines, wait for a line, stop them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from crossway.core.errors import ConfigError

__all__ = ["ManagedProcess"]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        echo: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self._argv = list(argv)
        self._cwd = cwd  # e.g. a CAP project, which `cds serve` loads from its working directory
        self._echo = echo
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        argv = list(self._argv)
        # The child gets its own session, so a Ctrl-C in the terminal reaches only us and we stop
        # the children in order (gateways drain before NATS goes away), and the parent-death
        # signal (util-linux setpriv; no Python runs between fork and exec) so none outlives us.
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            start_new_session=True,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=self._cwd,
        )
        self._reader = asyncio.create_task(self._read(), name=f"read-{self.name}")

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            raw = await self._proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip()
            if self._echo:
                print(f"  [{self.name}] {line}", file=sys.stderr, flush=True)
            async with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        await self._proc.wait()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, pattern: str, timeout: float = 20.0, *, after: int = 0) -> re.Match[str]:
        """The first line (from index ``after``) matching ``pattern``; a clear error when none comes."""
        regex = re.compile(pattern)

        def find() -> re.Match[str] | None:
            for line in self._lines[after:]:
                match = regex.search(line)
                if match:
                    return match
            return None

        async def wait() -> re.Match[str]:
            async with self._changed:
                while True:
                    match = find()
                    if match:
                        return match
                    if self.returncode is not None and self._reader is not None and self._reader.done():
                        raise ConfigError(
                            f"{self.name} exited with code {self.returncode} before printing /{pattern}/",
                            hint="its last lines:\n    " + "\n    ".join(self._lines[-15:]),
                        )
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ConfigError(
                f"{self.name} did not print /{pattern}/ within {timeout:.0f} s",
                hint="its last lines:\n    " + "\n    ".join(self._lines[-15:]),
            ) from None

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process (nothing when it has ended)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    async def wait(self) -> int:
        """Until the process exits by itself; its exit code."""
        assert self._proc is not None
        return await self._proc.wait()

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (the process drains), then SIGKILL after ``timeout``."""
        if self._proc is None:
            return 0
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 5)
        return self._proc.returncode or 0

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
