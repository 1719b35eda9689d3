"""A real SAP CAP OData V2 server on loopback, for the SAP adapter's tests and the demo.

The CAP project lives in ``tests/sap_cap`` (package.json + package-lock.json, never
node_modules). @sap/cds 10 needs Node 22; machines often have an older Node, so Node 22 comes
from the npm registry as a package into ``.tools/node22`` (gitignored), and npm runs under it.
Everything is installed once and reused; ``npm ci`` runs again only when the lock file changes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from crossway.core.errors import ConfigError
from crossway.demo.processes import ManagedProcess

__all__ = ["CAP_PROJECT", "CapServer", "NodeMissing", "ensure_cap_project"]

REPO = Path(__file__).resolve().parents[2]
CAP_PROJECT = REPO / "tests" / "sap_cap"
TOOLS = REPO / ".tools" / "node22"
NODE_PACKAGE = "node@22"


class NodeMissing(ConfigError):
    code = "config.invalid"
    default_hint = "install Node.js with npm (any version): Node 22 is then fetched from the npm registry"


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ConfigError(
            f"`{' '.join(argv)}` failed in {cwd}: {(result.stderr or result.stdout).strip()[-400:]}",
            hint="check the npm registry is reachable",
        )


def ensure_cap_project() -> dict[str, str]:
    """Install Node 22 and the CAP project's packages if needed; the environment to run them."""
    npm = shutil.which("npm")
    if npm is None:
        raise NodeMissing("npm is not on PATH; it is needed to install Node 22 and SAP CAP")
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_update_notifier"] = "false"
    node = TOOLS / "node_modules" / ".bin" / "node"
    if not node.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        if not (TOOLS / "package.json").exists():
            (TOOLS / "package.json").write_text('{"name": "crossway-tools", "private": true}\n')
        _run([npm, "install", "--no-audit", "--no-fund", NODE_PACKAGE], TOOLS, env)
    lock = CAP_PROJECT / "package-lock.json"
    stamp = CAP_PROJECT / "node_modules" / ".package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund"], CAP_PROJECT, env)
    return env


class CapServer:
    """``cds serve`` of the CAP project on 127.0.0.1, port chosen by the OS."""

    def __init__(self, *, echo: bool = False, env: dict[str, str] | None = None) -> None:
        self._echo = echo
        self._extra_env = env or {}
        self.process: ManagedProcess | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/odata/v2/business/"

    async def start(self) -> None:
        env = await asyncio.to_thread(ensure_cap_project)
        env.update(self._extra_env)
        env["NODE_ENV"] = "development"
        serve = CAP_PROJECT / "node_modules" / "@sap" / "cds" / "bin" / "serve.js"
        node = TOOLS / "node_modules" / ".bin" / "node"
        self.process = ManagedProcess(
            "sap-cap", [str(node), str(serve), "--port", "0"], echo=self._echo, env=env, cwd=CAP_PROJECT
        )
        await self.process.start()
        match = await self.process.wait_for(r"server listening on \{ url: 'http://localhost:(\d+)' \}", 60)
        self.port = int(match.group(1))

    async def aclose(self) -> None:
        if self.process is not None:
            await self.process.stop()

    async def __aenter__(self) -> CapServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
