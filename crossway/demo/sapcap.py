"""A real SAP CAP OData V2 server on loopback: the demo's business register, and the SAP tests'.

The CAP project ships with this package in ``crossway/demo/sap_cap`` (package.json, the committed
package-lock.json, server.js, the CDS model and its seed data — never node_modules). It is
installed at run time into a tools folder in the user's cache, by default
``$XDG_CACHE_HOME/crossway/tools`` (``~/.cache/crossway/tools``) — never inside the installed
package, so ``pip uninstall`` leaves nothing behind in site-packages:

    tools/node22/     Node 22 from the npm registry (``npm install node@22``): @sap/cds 10 needs
                      Node 22, and machines often have an older one
    tools/sap_cap/    a copy of the CAP project with its packages (``npm ci`` on the lock file)

Each step runs only when needed — Node when it is missing, ``npm ci`` when the lock file's hash
differs from the one recorded after the last install — so every later start costs a few file
reads. The source files are synced into the copy on every start (only what differs is written),
so an edited server.js or model takes effect without a reinstall. A file lock serializes
installers: a demo and a test run may start at the same time on one machine.

    ConfigError
    ├── NodeMissing        demo.node_missing         npm is not on PATH: Node 22 cannot be installed
    └── NodeInstallFailed  demo.node_install_failed  an npm command failed (registry unreachable, …)
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crossway.core.errors import ConfigError
from crossway.demo.processes import ManagedProcess

__all__ = [
    "CAP_PROJECT",
    "DEFAULT_TOOLS",
    "CapRuntime",
    "CapServer",
    "NodeInstallFailed",
    "NodeMissing",
    "ensure_cap_project",
]

CAP_PROJECT = Path(__file__).resolve().parent / "sap_cap"


def _user_cache() -> Path:
    # XDG Base Directory: $XDG_CACHE_HOME when set to an absolute path, else ~/.cache.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if xdg.startswith("/") else Path.home() / ".cache"


DEFAULT_TOOLS = _user_cache() / "crossway" / "tools"
NODE_PACKAGE = "node@22"
_NPM_FLAGS = ("--no-audit", "--no-fund", "--loglevel=error")
_LOCK_STAMP = ".crossway-lock.sha256"  # inside node_modules: gone whenever node_modules is


class NodeMissing(ConfigError):
    code = "demo.node_missing"
    default_hint = (
        "install Node.js with npm (any version, e.g. `apt-get install nodejs npm`); "
        "Node 22 and SAP CAP are then fetched from the npm registry"
    )


class NodeInstallFailed(ConfigError):
    code = "demo.node_install_failed"
    default_hint = "check that the npm registry is reachable (npm config get registry), then start again"


@dataclass(frozen=True, slots=True)
class CapRuntime:
    """What an installed CAP project needs to run: the Node 22 binary, the project, the environment."""

    node: Path
    project: Path
    env: dict[str, str]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    try:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise NodeInstallFailed(f"`{' '.join(argv)}` in {cwd} did not finish within 10 minutes") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-400:]
        raise NodeInstallFailed(f"`{' '.join(argv)}` failed in {cwd} (exit {result.returncode}): {output}")


def _sync(source: Path, target: Path) -> None:
    """Make ``target`` hold exactly the project's files (its node_modules aside), writing only changes."""
    wanted = {
        path.relative_to(source): path
        for path in source.rglob("*")
        if path.is_file() and "node_modules" not in path.relative_to(source).parts
    }
    for relative, path in wanted.items():
        data, copy = path.read_bytes(), target / relative
        if not copy.is_file() or copy.read_bytes() != data:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
    # A file removed from the project (say, a seed CSV) must not linger in the copy.
    for entry in target.iterdir():
        if entry.name == "node_modules":
            continue
        for path in [entry, *entry.rglob("*")] if entry.is_dir() else [entry]:
            if path.is_file() and path.relative_to(target) not in wanted:
                path.unlink()


def ensure_cap_project(tools: Path = DEFAULT_TOOLS, say: Callable[[str], None] | None = None) -> CapRuntime:
    """Install Node 22 and the CAP project's packages when missing or stale; how to run them.

    npm is needed only for an install: once everything is in place, a machine without npm runs
    the server all the same.
    """
    tools.mkdir(parents=True, exist_ok=True)
    node_dir, project = tools / "node22", tools / "sap_cap"
    node = node_dir / "node_modules" / ".bin" / "node"
    env = dict(os.environ)
    # Node 22 first on PATH: npm's own `#!/usr/bin/env node` then runs under it too.
    env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_update_notifier"] = "false"

    def npm() -> str:
        found = shutil.which("npm", path=env["PATH"])
        if found is None:
            raise NodeMissing(f"npm is not on PATH; it is needed once, to install Node 22 and SAP CAP into {tools}")
        return found

    with _locked(tools / ".install.lock"):
        if not node.exists():
            if say is not None:
                say(f"  installing Node 22 from the npm registry into {node_dir} (once, ~10 s)…")
            node_dir.mkdir(exist_ok=True)
            (node_dir / "package.json").write_text('{"name": "crossway-tools", "private": true}\n')
            _run([npm(), "install", *_NPM_FLAGS, NODE_PACKAGE], node_dir, env)
        project.mkdir(exist_ok=True)
        _sync(CAP_PROJECT, project)
        digest = hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()
        stamp = project / "node_modules" / _LOCK_STAMP
        if not stamp.is_file() or stamp.read_text() != digest:
            if say is not None:
                say(f"  installing the SAP CAP project's packages into {project} (npm ci, once)…")
            _run([npm(), "ci", *_NPM_FLAGS], project, env)
            stamp.write_text(digest)
    return CapRuntime(node, project, env)


class CapServer:
    """``cds serve`` of the CAP project on 127.0.0.1, port chosen by the OS."""

    def __init__(
        self,
        *,
        echo: bool = False,
        env: dict[str, str] | None = None,
        tools: Path = DEFAULT_TOOLS,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self._echo = echo
        self._extra_env = env or {}  # e.g. SAP_TEST_USER / SAP_TEST_PASSWORD for basic auth
        self._tools = tools
        self._say = say
        self.process: ManagedProcess | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/odata/v2/business/"

    async def start(self) -> None:
        runtime = await asyncio.to_thread(ensure_cap_project, self._tools, self._say)
        env = {**runtime.env, **self._extra_env, "NODE_ENV": "development"}
        serve = runtime.project / "node_modules" / "@sap" / "cds" / "bin" / "serve.js"
        self.process = ManagedProcess(
            "sap-cap", [str(runtime.node), str(serve), "--port", "0"], echo=self._echo, env=env, cwd=runtime.project
        )
        await self.process.start()
        match = await self.process.wait_for(r"server listening on \{ url: 'http://localhost:(\d+)' \}", 60)
        self.port = int(match.group(1))

    async def aclose(self) -> None:
        if self.process is not None:
            await self.process.stop()

    async def __aenter__(self) -> CapServer:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
