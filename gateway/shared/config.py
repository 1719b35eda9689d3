"""Gateway configuration: one TOML file, loaded once, validated, immutable, passed down.

Paths in the file are relative to the file's directory. The only environment override is
``CROSSWAY_NATS_URL`` (read here and nowhere else), so an operator can point every process of a
host at a NATS cluster without editing files.

``[nats]``: ``url`` — one URL, or several comma-separated, or ``urls = [...]`` (a cluster) — and
the gateway's NATS identity: ``ca`` (the NATS servers' CA), ``certificate`` and ``key`` (issued by
the registry from a CSR made here). A URL without an identity is refused: nobody connects to
NATS anonymously. No URL starts an embedded nats-server with a private PKI in the data directory.
``shared_replay = true``: the member's gateways share one replay window in NATS KV (gateways of one
member on separate hosts: a message replayed to another of them is still refused).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from adapters.settings import load_adapter_settings
from crossway.core.errors import ConfigError, CrosswayError
from crossway.core.ids import GatewayId, ServiceId, SubsystemId
from crossway.core.tomlkeys import check_keys
from crossway.eventloop import EVENT_LOOPS
from crossway.logs import LOG_FORMATS
from gateway.shared.config_values import (
    _MIB,
    AdminConfig,
    AuditConfig,
    ClientCertificate,
    GatewayConfig,
    JwksConfig,
    JwtConfig,
    Limits,
    ServiceBinding,
)

__all__ = [
    "AdminConfig",
    "AuditConfig",
    "ClientCertificate",
    "GatewayConfig",
    "JwksConfig",
    "JwtConfig",
    "Limits",
    "ServiceBinding",
    "load_config",
]

ENV_NATS_URL = "CROSSWAY_NATS_URL"

# The keys each table may hold; any other key is refused with its file, table and the nearest
# known key (crossway.core.tomlkeys) — a typo must never fall back to a default.
_KEYS: dict[str, tuple[str, ...]] = {
    "top": (
        *("gateway", "listen", "nats", "registry", "keys", "client_auth", "audit", "tracing"),
        *("security", "limits", "policies", "services", "admin"),
        *("metrics", "logging"),
        "delivery",  # registered delivery (issue 14): read by gateway.delivery.config
    ),
    "gateway": ("id", "data_dir", "workers", "event_loop", "peer_multiplex", "peer_connections"),
    "listen": ("client", "peer"),
    "nats": ("url", "urls", "ca", "certificate", "key", "shared_replay"),
    "registry": ("anchor", "source"),
    "keys": ("tls_key", "tls_certificate", "signing_key", "signing_certificate", "encryption_key", "passphrase_env"),
    "client_auth": ("jwt", "certificates"),
    "client_auth.jwt": ("issuer", "audience", "public_keys", "algorithms", *("jwks_url", "jwks_ca", "jwks_refresh_s")),
    "client_auth.certificates": ("subsystem", "certificate"),
    "audit": (
        *("spool_dir", "strict", "replicas", "stream", "checkpoint_interval_s"),
        *("archive_payloads", "auditor_keys", "archive_spool_dir", "unsafe_release_before_durable"),
    ),
    "tracing": ("export",),
    "security": ("max_clock_skew_s", "default_timeout_s"),
    "limits": ("max_message_bytes", "max_deadline_s", "max_metadata_entries", "max_metadata_bytes"),
    "policies": ("dir",),
    # [services.rest] / [services.sap] are checked by adapters.settings, which owns their keys.
    "services": ("id", "adapter", "address", "timeout_s", "rest", "sap"),
    "admin": (
        *("listen", "issuer", "audience", "public_keys", "algorithms", "roles_claim"),
        *("jwks_url", "jwks_ca", "jwks_refresh_s"),
    ),
    # Operators (issue 17): /metrics, and the log format.
    "metrics": ("listen",),
    "logging": ("format",),
}


_DEFAULT_LIMITS = Limits()


class _Reader:
    """Typed access to a TOML table that names the file and key in every error."""

    def __init__(self, source: Path, table: Mapping[str, Any], prefix: str = "") -> None:
        self.source, self.table, self.prefix = source, table, prefix

    def _fail(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.prefix or 'top'}] {key}: {problem}", hint=hint)

    def only(self, kind: str) -> _Reader:
        """Refuse keys this kind of table does not have (``kind`` names it in ``_KEYS``)."""
        check_keys(self.table, _KEYS[kind], source=self.source, where=self.prefix or "top")
        return self

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self._fail(key, "is required", f'add `{key} = "…"` to the file')
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, got {type(value).__name__}", "quote the value")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, f"must be a positive number, got {value!r}", "e.g. 30")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}", "write true or false")
        return value

    def path(self, key: str, default: str | None = None) -> Path:
        return (self.source.parent / self.text(key, default)).resolve()

    def optional_path(self, key: str) -> Path | None:
        return self.path(key) if self.table.get(key) else None

    def sub(self, key: str, required: bool = True) -> _Reader:
        value = self.table.get(key)
        if value is None and not required:
            value = {}
        if not isinstance(value, dict):
            raise self._fail(key, "section is missing" if value is None else "must be a table", f"add a [{key}] table")
        return _Reader(self.source, value, f"{self.prefix}.{key}" if self.prefix else key)

    def tables(self, key: str) -> list[_Reader]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "must be an array of tables", f"write [[{key}]] entries")
        where = f"{self.prefix}.{key}" if self.prefix else key
        return [_Reader(self.source, v, f"{where}[{i}]") for i, v in enumerate(value)]

    def ident(self, key: str, parse: Any) -> Any:
        value = self.text(key)
        try:
            return parse(value)
        except CrosswayError as exc:
            raise self._fail(key, exc.message, exc.hint) from exc


def _algorithms(jwt: _Reader) -> tuple[str, ...]:
    value = jwt.table.get("algorithms", ["ES256", "EdDSA"])
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise jwt._fail("algorithms", f"must be a list of algorithm names, got {value!r}", 'algorithms = ["ES256"]')
    return tuple(value)


def _passphrase(keys: _Reader, environ: Mapping[str, str]) -> bytes | None:
    name = keys.text("passphrase_env", "")
    if not name:
        return None
    if name not in environ:
        raise keys._fail("passphrase_env", f"names {name}, which is not set", f"export {name} before starting")
    return environ[name].encode()


def _admin(section: _Reader) -> AdminConfig | None:
    if not section.table:
        return None
    jwks = _jwks(section)
    keys_raw = section.table.get("public_keys", [])
    if not isinstance(keys_raw, list) or not (keys_raw or jwks) or not all(isinstance(k, str) for k in keys_raw):
        raise section._fail(
            "public_keys", "must list at least one PEM file (or set jwks_url)", 'public_keys = ["admin-idp.pem"]'
        )
    return AdminConfig(
        listen=section.text("listen", "127.0.0.1:0"),
        issuer=section.text("issuer"),
        audience=section.text("audience"),
        public_keys=tuple((section.source.parent / k).resolve() for k in keys_raw),
        algorithms=_algorithms(section),
        roles_claim=section.text("roles_claim", "roles"),
        jwks=jwks,
    )


def _jwks(section: _Reader) -> JwksConfig | None:
    """``jwks_url`` (https://, or http:// on loopback), ``jwks_ca``, ``jwks_refresh_s`` of a token table."""
    url = section.text("jwks_url", "")
    if not url:
        return None
    if not url.startswith(("https://", "http://")):
        raise section._fail("jwks_url", f"must be an https:// URL, got {url!r}", 'jwks_url = "https://idp/jwks.json"')
    return JwksConfig(url, section.optional_path("jwks_ca"), section.number("jwks_refresh_s", 300.0))


def _auditor_keys(audit: _Reader) -> tuple[bytes, ...]:
    """The auditors' X25519 public keys (PEM files) for payload archiving, checked one by one."""
    files = audit.table.get("auditor_keys")
    example = 'auditor_keys = ["auditor.pub"]'
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise audit._fail(
            "auditor_keys", "must list the auditors' X25519 public key files when archive_payloads is on", example
        )
    keys = []
    for name in files:
        path = (audit.source.parent / name).resolve()
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as exc:
            raise audit._fail("auditor_keys", f"cannot read {path}: {exc.strerror}", "check the path") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise audit._fail("auditor_keys", f"{path} is not a PEM public key", "export the key as PEM") from exc
        if not isinstance(key, x25519.X25519PublicKey):
            raise audit._fail(
                "auditor_keys",
                f"{path} holds a {type(key).__name__}, not an X25519 key",
                "make one with `crossway audit archive-key`",
            )
        keys.append(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return tuple(keys)


def _audit(audit: _Reader, data_dir: Path) -> AuditConfig:
    archive = audit.flag("archive_payloads", False)
    return AuditConfig(
        spool_dir=(audit.source.parent / audit.text("spool_dir", str(data_dir / "audit-spool"))).resolve(),
        strict=audit.flag("strict", False),
        replicas=int(audit.number("replicas", 1)),
        stream=audit.text("stream", "CROSSWAY_AUDIT"),
        checkpoint_interval_s=float(audit.number("checkpoint_interval_s", 1.0)),
        archive_payloads=archive,
        auditor_keys=_auditor_keys(audit) if archive else (),
        archive_spool_dir=(
            (audit.source.parent / audit.text("archive_spool_dir", str(data_dir / "audit-archive-spool"))).resolve()
            if archive
            else None
        ),
        unsafe_release_before_durable=audit.flag("unsafe_release_before_durable", False),
    )


def _workers(gw: _Reader) -> int:
    return _count(gw, "workers", 1, 256, "workers = 2 (one per core)")


def _count(gw: _Reader, key: str, low: int, high: int, example: str, default: int | None = None) -> int:
    value = gw.table.get(key, low if default is None else default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise gw._fail(key, f"must be a whole number from {low} to {high}, got {value!r}", f"e.g. {example}")
    return value


def _limits(section: _Reader, default_timeout_s: float) -> Limits:
    low, high = 64 * 1024, 1024 * _MIB
    size = section.table.get("max_message_bytes", _DEFAULT_LIMITS.max_message_bytes)
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        raise section._fail(
            "max_message_bytes",
            f"must be a whole number of bytes from {low} to {high}, got {size!r}",
            "e.g. max_message_bytes = 4194304 (4 MiB); send larger payloads as streams",
        )
    deadline = section.number("max_deadline_s", _DEFAULT_LIMITS.max_deadline_s)
    if deadline < default_timeout_s:
        raise section._fail(
            "max_deadline_s",
            f"is {deadline:g} s, shorter than [security] default_timeout_s ({default_timeout_s:g} s)",
            "raise max_deadline_s or lower default_timeout_s",
        )
    return Limits(
        max_message_bytes=size,
        max_deadline_s=deadline,
        max_metadata_entries=_count(
            section, "max_metadata_entries", 8, 1024, "max_metadata_entries = 64", _DEFAULT_LIMITS.max_metadata_entries
        ),
        max_metadata_bytes=_count(
            section,
            "max_metadata_bytes",
            1024,
            64 * 1024,
            "max_metadata_bytes = 8192",
            _DEFAULT_LIMITS.max_metadata_bytes,
        ),
    )


def _event_loop(gw: _Reader) -> str:
    value = gw.text("event_loop", "uvloop")
    if value not in EVENT_LOOPS:
        raise gw._fail(
            "event_loop", f"must be one of {', '.join(EVENT_LOOPS)}, got {value!r}", 'e.g. event_loop = "uvloop"'
        )
    return value


def _nats_urls(nats: _Reader) -> str:
    urls = nats.table.get("urls")
    if urls is None:
        return nats.text("url", "")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise nats._fail("urls", "must list the NATS servers' URLs", 'urls = ["tls://n1:4222", "tls://n2:4222"]')
    return ",".join(urls)


def _nats_identity(nats: _Reader, url: str) -> tuple[Path | None, Path | None, Path | None]:
    paths = tuple(nats.optional_path(k) for k in ("ca", "certificate", "key"))
    if url and not all(paths):
        missing = ", ".join(k for k, v in zip(("ca", "certificate", "key"), paths, strict=True) if v is None)
        raise nats._fail(
            missing.split(", ")[0],
            f"a NATS URL needs the gateway's NATS identity ({missing} missing): nobody connects anonymously",
            "request one with `crossway nats request` and have the registry issue it",
        )
    return paths[0], paths[1], paths[2]


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a gateway's TOML file; a bad file fails here with the file and key named."""
    environ = os.environ if environ is None else environ
    source = path.resolve()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read gateway configuration {source}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}", hint="fix the syntax at the named line") from exc
    top = _Reader(source, raw)
    gw = top.sub("gateway").only("gateway")
    listen = top.sub("listen").only("listen")
    registry = top.sub("registry").only("registry")
    keys = top.sub("keys").only("keys")
    nats = top.sub("nats", required=False).only("nats")
    client_auth = top.sub("client_auth", required=False).only("client_auth")
    audit = top.sub("audit", required=False).only("audit")
    tracing = top.sub("tracing", required=False).only("tracing")
    security = top.sub("security", required=False).only("security")
    limits = top.sub("limits", required=False).only("limits")
    policies = top.sub("policies", required=False).only("policies")
    admin = top.sub("admin", required=False).only("admin")
    metrics = top.sub("metrics", required=False).only("metrics")
    logs = top.sub("logging", required=False).only("logging")
    top.only("top")  # after the required tables: a renamed [gateway] is reported as missing
    data_dir = gw.path("data_dir")
    default_timeout_s = security.number("default_timeout_s", 30.0)
    nats_url = environ.get(ENV_NATS_URL) or _nats_urls(nats)
    nats_ca, nats_certificate, nats_key = _nats_identity(nats, "" if environ.get(ENV_NATS_URL) else nats_url)

    jwt = None
    if "jwt" in client_auth.table:
        j = client_auth.sub("jwt").only("client_auth.jwt")
        jwks = _jwks(j)
        keys_raw = j.table.get("public_keys", [])
        if not isinstance(keys_raw, list) or not (keys_raw or jwks) or not all(isinstance(k, str) for k in keys_raw):
            raise j._fail(
                "public_keys", "must list at least one PEM file (or set jwks_url)", 'public_keys = ["idp.pem"]'
            )
        jwt = JwtConfig(
            issuer=j.text("issuer"),
            audience=j.text("audience"),
            public_keys=tuple((source.parent / k).resolve() for k in keys_raw),
            algorithms=_algorithms(j),
            jwks=jwks,
        )
    services = tuple(
        ServiceBinding(
            service=s.ident("id", ServiceId.parse),
            adapter=s.text("adapter", "grpc"),
            address=s.text("address"),
            timeout_s=s.number("timeout_s", 30.0),
            settings=load_adapter_settings(
                source, s.prefix, s.table, s.text("adapter", "grpc"), s.text("address"), environ
            ),
        )
        for s in (entry.only("services") for entry in top.tables("services"))
    )
    return GatewayConfig(
        source=source,
        gateway_id=gw.ident("id", GatewayId.parse),
        data_dir=data_dir,
        client_listen=listen.text("client", "127.0.0.1:0"),
        peer_listen=listen.text("peer", "127.0.0.1:0"),
        nats_url=nats_url,
        nats_ca=nats_ca,
        nats_certificate=nats_certificate,
        nats_key=nats_key,
        shared_replay=nats.flag("shared_replay", False),
        registry_anchor=registry.path("anchor"),
        registry_source=registry.text("source", "nats"),
        tls_key=keys.path("tls_key"),
        tls_certificate=keys.path("tls_certificate"),
        signing_key=keys.path("signing_key"),
        signing_certificate=keys.path("signing_certificate"),
        encryption_key=keys.optional_path("encryption_key"),
        key_passphrase=_passphrase(keys, environ),
        client_certificates=tuple(
            ClientCertificate(c.ident("subsystem", SubsystemId.parse), c.path("certificate"))
            for c in (entry.only("client_auth.certificates") for entry in client_auth.tables("certificates"))
        ),
        jwt=jwt,
        services=services,
        policy_dir=policies.optional_path("dir"),
        audit=_audit(audit, data_dir),
        tracing_export=tracing.optional_path("export"),
        max_clock_skew_s=int(security.number("max_clock_skew_s", 60)),
        default_timeout_s=default_timeout_s,
        admin=_admin(admin),
        workers=_workers(gw),
        event_loop=_event_loop(gw),
        peer_multiplex=gw.flag("peer_multiplex", True),
        peer_connections=_count(gw, "peer_connections", 1, 64, "peer_connections = 2 (one per provider worker)"),
        limits=_limits(limits, default_timeout_s),
        metrics_listen=_metrics_listen(metrics),
        log_format=_log_format(logs),
    )


def _metrics_listen(metrics: _Reader) -> str:
    listen = metrics.text("listen", "")
    _, sep, port = listen.rpartition(":")
    if listen and (not sep or not port.isdigit() or int(port) > 65535):
        raise metrics._fail("listen", f"must be HOST:PORT, got {listen!r}", 'e.g. listen = "127.0.0.1:9464"')
    return listen


def _log_format(logs: _Reader) -> str:
    value = logs.text("format", "text")
    if value not in LOG_FORMATS:
        raise logs._fail("format", f"must be one of {', '.join(LOG_FORMATS)}, got {value!r}", 'e.g. format = "json"')
    return value
