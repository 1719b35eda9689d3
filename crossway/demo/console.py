"""The web console beside the demo federation (``make run``): admin ports, the audit API, the console.

What a real agency would run, on loopback:
- every gateway opens its admin port, trusting the console's identity provider for admin tokens
  (here the console's built-in DEMO provider: sign in without a password, demo only);
- ``crossway audit serve`` indexes the audit streams and answers auditors, and records every
  auditor's read in the audit log through the tax board's gateway;
- ``crossway console`` serves the pages and talks to both with the signed-in user's token.

Used by ``crossway demo`` and by the console's browser tests, so the tests drive exactly what a
newcomer opens in a browser.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from console.config import DEFAULT_DEMO_USERS, DEMO_ISSUER
from crossway.demo.federation import Agency, Federation
from crossway.demo.processes import ManagedProcess
from crossway.security.keys import generate_signing_key, generate_tls_key, save_pem, save_private_key
from crossway.security.pki import self_signed

__all__ = ["ADMIN_AUDIENCE", "AUDIT_AUDIENCE", "ConsoleFederation", "ConsoleStack"]

ADMIN_AUDIENCE = "crossway-admin"
AUDIT_AUDIENCE = "crossway-audit"
_ADMIN_PORT = r"admin API of {gateway} listening on 127\.0\.0\.1:(\d+)"


class ConsoleFederation(Federation):
    """The demo federation with an admin port on every gateway, for the console's users."""

    def __init__(self, workdir: Path, **kwargs: Any) -> None:
        super().__init__(workdir, **kwargs)
        # The console's demo identity provider signs the users' tokens with this key.
        self.console_idp_key = generate_signing_key("ES256")

    def _common_config(self, agency: Agency) -> str:
        agency.directory.mkdir(parents=True, exist_ok=True)
        save_pem(agency.directory / "console-idp.pub", self.console_idp_key.public_key())
        return (
            super()._common_config(agency)
            + f'\n[admin]\nlisten = "127.0.0.1:0"\nissuer = "{DEMO_ISSUER}"\naudience = "{ADMIN_AUDIENCE}"\n'
            + 'public_keys = ["console-idp.pub"]\n'
        )


class ConsoleStack:
    """The audit API and the console, as processes, for a started ``ConsoleFederation``."""

    def __init__(
        self, fed: ConsoleFederation, directory: Path, *, echo: bool = False, index: Path | None = None
    ) -> None:
        self.fed = fed
        self.directory = directory
        self.echo = echo
        self.index = index or directory / "audit-index.sqlite"
        self.audit_api: ManagedProcess | None = None
        self.console: ManagedProcess | None = None
        self.admin_ports: dict[str, int] = {}
        self.audit_port = 0
        self.url = ""

    async def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        save_private_key(d / "demo-idp.key", self.fed.console_idp_key)
        save_pem(d / "demo-idp.pub", self.fed.console_idp_key.public_key())
        (d / "registry-ca.pem").write_bytes(self.fed.ca_pem)
        tls_key = generate_tls_key()
        save_private_key(d / "audit-api.key", tls_key)
        save_pem(
            d / "audit-api.crt",
            self_signed(
                tls_key, "audit-api.demo", valid_for=dt.timedelta(days=30), ip_addresses=("127.0.0.1",), anchor=True
            ),
        )
        # 1. the gateways' admin ports, from their logs
        for agency in self.fed.agencies:
            assert agency.process is not None
            match = await agency.process.wait_for(_ADMIN_PORT.format(gateway=agency.gateway), 30)
            self.admin_ports[str(agency.gateway)] = int(match.group(1))
        # 2. the audit API, indexing as it goes; reads recorded at the tax board's gateway
        recorder = self.admin_ports[str(self.fed.tax.gateway)]
        self.audit_api = ManagedProcess(
            "audit api",
            [
                *(sys.executable, "-m", "crossway.cli", "audit", "serve", "--index", str(self.index)),
                # It indexes as the federation's audit index identity (reads only; crossway.natsauth).
                *self.fed.nats_arguments(self.fed.index),
                *("--listen", "127.0.0.1:0"),
                *("--tls-key", str(d / "audit-api.key"), "--tls-cert", str(d / "audit-api.crt")),
                *("--issuer", DEMO_ISSUER, "--audience", AUDIT_AUDIENCE, "--public-key", str(d / "demo-idp.pub")),
                *("--anchor", str(self.fed.workdir / "registry" / "anchor.json")),
                *("--record-reads-to", f"127.0.0.1:{recorder}", "--record-reads-ca", str(d / "registry-ca.pem")),
                *("--name", "demo audit API"),
            ],
            echo=self.echo,
        )
        await self.audit_api.start()
        self.audit_port = int(
            (await self.audit_api.wait_for(r"audit API listening on 127\.0\.0\.1:(\d+)", 30)).group(1)
        )
        # 3. the console
        (d / "console.toml").write_text(self._console_toml())
        self.console = ManagedProcess(
            "console",
            [sys.executable, "-m", "crossway.cli", "console", "--config", str(d / "console.toml")],
            echo=self.echo,
        )
        await self.console.start()
        self.url = (await self.console.wait_for(r"console listening on (http://\S+?)/? ", 30)).group(1)

    def _console_toml(self) -> str:
        # The provider gateways first: the policy pages open on the first one.
        order = sorted(self.fed.agencies, key=lambda a: a is self.fed.tax)
        gateways = "".join(
            f'\n[[gateways]]\nname = "{a.gateway}"\naddress = "127.0.0.1:{self.admin_ports[str(a.gateway)]}"\n'
            'ca = "registry-ca.pem"\n'
            for a in order
        )
        return (
            "# The demo's console: written by `crossway demo`. DEMO ONLY: a sign-in without passwords.\n"
            '[console]\nlisten = "127.0.0.1:0"\n\n'
            f'[demo_provider]\nkey = "demo-idp.key"\naudiences = ["{ADMIN_AUDIENCE}", "{AUDIT_AUDIENCE}"]\n\n'
            f'[audit]\naddress = "127.0.0.1:{self.audit_port}"\nca = "audit-api.crt"\n' + gateways
        )

    def sign_in_lines(self) -> list[str]:
        users = {u.roles[0]: u for u in DEFAULT_DEMO_USERS}
        return [
            f"The web console: {self.url}/",
            f'  as the demo auditor:      Sign in, then "{users["auditor"].name}" ({users["auditor"].subject})',
            f'  as the demo policy admin: Sign in, then "{users["policy-admin"].name}" ({users["policy-admin"].subject})',
            f'  (and "{users["observer"].name}": read only). Demo sign-in, no passwords: never for real use.',
        ]

    async def aclose(self) -> None:
        for process in (self.console, self.audit_api):
            if process is not None:
                await process.stop()

    async def __aenter__(self) -> ConsoleStack:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
