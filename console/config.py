"""The console's configuration: one TOML file, loaded once, validated, immutable, passed down.

Paths are relative to the file. The one value read from the environment is the OIDC client
secret, and only under the variable the file names (``client_secret_env``), so no secret sits in
the file. A bad file stops the console at start with the file and the key named.

    [console]
    listen = "127.0.0.1:8600"                    # port 0: any free port
    public_url = "https://console.tax.example"   # what browsers use; https turns on Secure cookies
    session_ttl_s = 28800

    [oidc]                                       # the agency's identity provider (authorization code + PKCE)
    issuer = "https://idp.tax.example"
    client_id = "crossway-console"
    client_secret_env = "CROSSWAY_CONSOLE_CLIENT_SECRET"   # optional: a confidential client
    authorization_endpoint = "https://idp.tax.example/authorize"
    token_endpoint = "https://idp.tax.example/token"
    public_keys = ["idp.pem"]                    # verify the ID token
    scopes = "openid profile"
    roles_claim = "roles"                        # the UI shows what these roles may do

    [demo_provider]                              # DEMO ONLY: a built-in identity provider, no passwords
    key = "demo-idp.key"
    audiences = ["crossway-admin", "crossway-audit"]

    [audit]                                      # the audit index's API (crossway audit serve)
    address = "audit.tax.example:7443"
    ca = "audit-ca.pem"

    [[gateways]]                                 # admin ports (policies, status)
    name = "EE/GOV/70000001/gw1"
    address = "gw1.tax.example:9443"
    ca = "registry-ca.pem"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crossway.core.errors import ConfigError
from crossway.core.tomlkeys import check_keys

__all__ = [
    "ApiEndpoint",
    "ConsoleConfig",
    "DemoProviderConfig",
    "DemoUser",
    "OidcConfig",
    "load_config",
]

# The built-in demo provider's issuer: a name, never a reachable host (".invalid", RFC 2606).
DEMO_ISSUER = "https://demo-idp.crossway.invalid"
DEMO_CLIENT_ID = "crossway-console"


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    name: str
    address: str  # host:port
    ca: Path  # PEM the server's certificate chains to
    server_name: str = ""  # TLS name when not the address's host


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    authorization_endpoint: str  # absolute, or a path on the console (the demo provider)
    token_endpoint: str
    public_keys: tuple[Path, ...]
    client_secret: str = ""
    scopes: str = "openid"
    roles_claim: str = "roles"
    name_claim: str = "name"
    ca: Path | None = None  # the token endpoint's CA, when not the system's


@dataclass(frozen=True, slots=True)
class DemoUser:
    subject: str
    name: str
    roles: tuple[str, ...]
    member: str = ""  # the agency an auditor token is scoped to ("" = every agency)


@dataclass(frozen=True, slots=True)
class DemoProviderConfig:
    key: Path
    audiences: tuple[str, ...]
    users: tuple[DemoUser, ...]
    token_ttl_s: int = 3600


DEFAULT_DEMO_USERS = (
    DemoUser("auditor@demo.crossway", "Demo auditor", ("auditor",)),
    DemoUser("policy-admin@demo.crossway", "Demo policy admin", ("policy-admin",)),
    DemoUser("observer@demo.crossway", "Demo observer", ("observer",)),
)


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    source: Path
    listen: str
    public_url: str  # "" → http://<listen address> once bound
    oidc: OidcConfig
    audit: ApiEndpoint | None
    gateways: tuple[ApiEndpoint, ...]
    demo_provider: DemoProviderConfig | None = None
    session_ttl_s: int = 8 * 3600

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies over https. The demo serves http on loopback, where browsers would drop them."""
        return self.public_url.startswith("https://")


# The keys each table may hold: anything else is a typo, refused at start (crossway.core.tomlkeys).
_KEYS = {
    "top": ("console", "oidc", "demo_provider", "audit", "gateways"),
    "console": ("listen", "public_url", "session_ttl_s"),
    "oidc": (
        "issuer",
        "client_id",
        "client_secret_env",
        "authorization_endpoint",
        "token_endpoint",
        "public_keys",
        "scopes",
        "roles_claim",
        "name_claim",
        "ca",
    ),
    "demo_provider": ("key", "audiences", "users", "token_ttl_s"),
    "users": ("subject", "name", "roles", "member"),
    "audit": ("name", "address", "ca", "server_name"),
    "gateways": ("name", "address", "ca", "server_name"),
}


class _Reader:
    """Typed access to one table, naming the file and key in every error (unknown keys too)."""

    def __init__(self, source: Path, table: Mapping[str, Any], prefix: str) -> None:
        self.source, self.table, self.prefix = source, table, prefix
        check_keys(table, _KEYS[prefix.split("[")[0]], source=source, where=prefix)

    def fail(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.prefix}] {key}: {problem}", hint=hint)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "is required", f'add `{key} = "…"`')
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {type(value).__name__}", "quote the value")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive integer, got {value!r}", "e.g. 3600")
        return value

    def texts(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.table.get(key, list(default) if default is not None else None)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a non-empty list of strings, got {value!r}", f'{key} = ["…"]')
        return tuple(value)

    def path(self, key: str) -> Path:
        return (self.source.parent / self.text(key)).resolve()

    def paths(self, key: str) -> tuple[Path, ...]:
        return tuple((self.source.parent / p).resolve() for p in self.texts(key))

    def sub(self, key: str) -> _Reader | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table", f"write a [{key}] table")
        return _Reader(self.source, value, key)

    def tables(self, key: str) -> list[_Reader]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "must be an array of tables", f"write [[{key}]] entries")
        return [_Reader(self.source, v, f"{key}[{i}]") for i, v in enumerate(value)]


def _endpoint(r: _Reader, default_name: str) -> ApiEndpoint:
    address = r.text("address")
    if ":" not in address:
        raise r.fail("address", f"{address!r} is not host:port", 'address = "gw1.example:9443"')
    return ApiEndpoint(r.text("name", default_name), address, r.path("ca"), r.text("server_name", ""))


def _url(r: _Reader, key: str, *, relative_ok: bool) -> str:
    value = r.text(key)
    parts = urlsplit(value)
    if parts.scheme in ("https", "http") and parts.netloc:
        return value
    if relative_ok and value.startswith("/"):
        return value
    raise r.fail(key, f"{value!r} is not an absolute http(s) URL", "e.g. https://idp.example/authorize")


def _demo(r: _Reader) -> DemoProviderConfig:
    users = []
    for u in r.tables("users"):  # their tables are named users[N]
        member = u.text("member", "")
        users.append(DemoUser(u.text("subject"), u.text("name"), u.texts("roles"), member))
    return DemoProviderConfig(
        key=r.path("key"),
        audiences=r.texts("audiences"),
        users=tuple(users) or DEFAULT_DEMO_USERS,
        token_ttl_s=r.integer("token_ttl_s", 3600),
    )


def load_config(source: Path, environ: Mapping[str, str]) -> ConsoleConfig:
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read console configuration {source}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}", hint="fix the syntax at the named line") from exc
    top = _Reader(source, doc, "top")
    console = top.sub("console") or _Reader(source, {}, "console")
    public_url = console.text("public_url", "").rstrip("/")
    parts = urlsplit(public_url)
    if public_url and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query):
        # An origin: browsers send exactly that in Origin, and the console's pages sit at its root.
        raise console.fail(
            "public_url", f"{public_url!r} is not an origin (scheme://host[:port])", "e.g. https://console.example"
        )
    demo_table = top.sub("demo_provider")
    demo = _demo(demo_table) if demo_table is not None else None
    oidc_table = top.sub("oidc")
    if oidc_table is None and demo is None:
        raise top.fail("oidc", "section is missing", "add an [oidc] table naming the agency's identity provider")
    oidc_reader = oidc_table or _Reader(source, {}, "oidc")
    if oidc_table is None:  # the demo provider, mounted on the console itself
        oidc = OidcConfig(
            issuer=DEMO_ISSUER,
            client_id=DEMO_CLIENT_ID,
            authorization_endpoint="/demo-idp/authorize",
            token_endpoint="/demo-idp/token",  # noqa: S106 (a path, not a secret)
            public_keys=(),
        )
    else:
        secret_env = oidc_reader.text("client_secret_env", "")
        if secret_env and secret_env not in environ:
            raise oidc_reader.fail(
                "client_secret_env", f"names {secret_env}, which is not set", f"export {secret_env} before starting"
            )
        oidc = OidcConfig(
            issuer=oidc_reader.text("issuer"),
            client_id=oidc_reader.text("client_id"),
            authorization_endpoint=_url(oidc_reader, "authorization_endpoint", relative_ok=False),
            token_endpoint=_url(oidc_reader, "token_endpoint", relative_ok=False),
            public_keys=oidc_reader.paths("public_keys"),
            client_secret=environ.get(secret_env, "") if secret_env else "",
            scopes=oidc_reader.text("scopes", "openid"),
            roles_claim=oidc_reader.text("roles_claim", "roles"),
            name_claim=oidc_reader.text("name_claim", "name"),
            ca=oidc_reader.path("ca") if oidc_reader.table.get("ca") else None,
        )
    audit_table = top.sub("audit")
    gateways = tuple(_endpoint(g, g.text("address", "")) for g in top.tables("gateways"))
    if len({g.name for g in gateways}) != len(gateways):
        raise top.fail("gateways", "two entries have the same name", "give every [[gateways]] entry its own name")
    return ConsoleConfig(
        source=source,
        listen=console.text("listen", "127.0.0.1:8600"),
        public_url=public_url,
        oidc=oidc,
        audit=_endpoint(audit_table, "audit") if audit_table is not None else None,
        gateways=gateways,
        demo_provider=demo,
        session_ttl_s=console.integer("session_ttl_s", 8 * 3600),
    )
