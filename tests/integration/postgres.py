"""A real PostgreSQL for the index tests: the machine's (127.0.0.1:5432), else one started here.

Order: ``CROSSWAY_TEST_POSTGRES`` (a URL) → a server answering on 127.0.0.1:5432 → a private
server from the PostgreSQL binaries (``initdb``/``pg_ctl`` on PATH or Debian's
/usr/lib/postgresql/*/bin) in a temp dir on a free port. When none is possible the tests skip,
except with ``CI=true``, where a missing PostgreSQL fails the run (``.ci/run`` installs it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

__all__ = ["postgres_database"]


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _private_server() -> Iterator[str]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise FileNotFoundError("no initdb/pg_ctl (install Debian's postgresql package)")
    root = Path(tempfile.mkdtemp(prefix="crossway-pg-"))
    data, port = root / "data", _free_port()
    # PostgreSQL refuses to run as root; the Debian package creates a 'postgres' user for it.
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on a real server; dropped afterwards."""
    with contextlib_exit_stack() as stack:
        server = os.environ.get("CROSSWAY_TEST_POSTGRES", "")
        if not server:
            local = "postgresql://postgres@127.0.0.1:5432/postgres"
            if _answers(local):
                server = local
            else:
                try:
                    server = stack.enter_context(_private_server())
                except (FileNotFoundError, subprocess.CalledProcessError, LookupError) as exc:
                    if os.environ.get("CI") == "true":
                        pytest.fail(f"PostgreSQL is required in CI and could not be started: {exc}")
                    pytest.skip(f"no PostgreSQL available: {exc}")
        name = "crossway_test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def contextlib_exit_stack():  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.ExitStack()
