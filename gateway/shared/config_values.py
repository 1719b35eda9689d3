"""The validated gateway configuration: frozen values that `gateway.shared.config.load_config` builds from gateway.toml and passes down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.settings import RestSettings, SapSettings
from crossway.core.ids import GatewayId, ServiceId, SubsystemId

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A local agency system authenticated by the client certificate it presents (pinned)."""

    subsystem: SubsystemId
    certificate: Path


@dataclass(frozen=True, slots=True)
class JwksConfig:
    """An identity provider's JWK Set (``jwks_url``), besides or instead of PEM files (issue 17)."""

    url: str
    ca: Path | None = None  # the CA of the URL's TLS certificate; None = the system's
    refresh_s: float = 300.0


@dataclass(frozen=True, slots=True)
class JwtConfig:
    issuer: str
    audience: str
    public_keys: tuple[Path, ...]
    algorithms: tuple[str, ...] = ("ES256", "EdDSA")
    jwks: JwksConfig | None = None


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A service this gateway provides, and how it reaches the backend."""

    service: ServiceId
    adapter: str  # "grpc" | "rest" | "sap_odata"
    address: str
    timeout_s: float = 30.0
    # The adapter's own table ([services.rest] / [services.sap]); None for gRPC.
    settings: RestSettings | SapSettings | None = None


@dataclass(frozen=True, slots=True)
class AuditConfig:
    spool_dir: Path
    strict: bool = False
    # Read but no longer used by the gateway: the streams are the operator's, provisioned at the
    # replicas the backbone has (crossway nats provision --replicas); gateways create no stream.
    replicas: int = 1
    stream: str = "CROSSWAY_AUDIT"
    # Seconds between signed Merkle checkpoints of this gateway's audit log; 0 turns them off.
    checkpoint_interval_s: float = 1.0
    # Payload archiving (off by default): bodies sealed to these auditors' raw X25519 public keys.
    archive_payloads: bool = False
    auditor_keys: tuple[bytes, ...] = ()
    archive_spool_dir: Path | None = None
    # Release answers before their record is durable (issue 12): a crash then loses records.
    unsafe_release_before_durable: bool = False


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin port (policies): TLS with the gateway's certificate, JWT with a roles claim."""

    listen: str
    issuer: str
    audience: str
    public_keys: tuple[Path, ...]
    algorithms: tuple[str, ...] = ("ES256", "EdDSA")
    roles_claim: str = "roles"
    jwks: JwksConfig | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """What a caller or a peer gateway may ask of this gateway; ``[limits]`` (docs/limits-and-input.md).

    ``max_message_bytes`` bounds one message of a call — a unary request or response, one message
    of a stream — on the client port, and one envelope's body on the peer port. gRPC's own default
    (4 MiB) is the default: large payloads go through streaming methods, which carry them in
    signed chunks and never hold them whole. Memory per call is proportional to this bound.
    """

    max_message_bytes: int = 4 * _MIB
    # The longest deadline a caller's call may carry out (the client gateway shortens longer ones)
    # and a peer's signed header may ask for (the provider gateway refuses longer ones).
    max_deadline_s: float = 600.0
    # The caller's gRPC metadata on the client port: entries and total bytes of keys and values.
    max_metadata_entries: int = 64
    max_metadata_bytes: int = 8 * 1024

    @property
    def grpc_message_bytes(self) -> int:
        """gRPC's own cap on one message, on every port and peer channel: the limit plus 1 MiB.

        Up to the margin over the limit a message still reaches Crossway, which refuses it with
        ``message.too_large`` and records it; beyond the margin gRPC refuses it before reading it
        (``RESOURCE_EXHAUSTED``, in gRPC's words) — that is what bounds memory per message.
        """
        return self.max_message_bytes + _MIB

    @property
    def grpc_metadata_bytes(self) -> int:
        """gRPC's cap on a call's metadata at the client port: well above ``max_metadata_bytes``,
        so that metadata over the limit reaches Crossway and is refused with a reason."""
        return max(64 * 1024, 4 * self.max_metadata_bytes)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: Path
    gateway_id: GatewayId
    data_dir: Path
    client_listen: str
    peer_listen: str
    nats_url: str  # "" → start an embedded nats-server in data_dir; several URLs comma-separated
    registry_anchor: Path
    registry_source: str  # "nats" | "file:PATH" | "grpc:HOST:PORT"
    tls_key: Path
    tls_certificate: Path
    signing_key: Path
    signing_certificate: Path
    encryption_key: Path | None
    # Read from the environment variable the file names; never printed (repr=False).
    key_passphrase: bytes | None = field(repr=False)
    client_certificates: tuple[ClientCertificate, ...]
    jwt: JwtConfig | None
    services: tuple[ServiceBinding, ...]
    policy_dir: Path | None
    audit: AuditConfig
    tracing_export: Path | None
    max_clock_skew_s: int = 60
    default_timeout_s: float = 30.0
    admin: AdminConfig | None = None
    # Processes serving the same ports (SO_REUSEPORT), so one gateway can use every core.
    workers: int = 1
    # "uvloop" (default) or "asyncio": the event loop the gateway's processes run on.
    event_loop: str = "uvloop"
    # Unary exchanges to provider gateways over one Multiplex stream per peer (else one Call each).
    peer_multiplex: bool = True
    # Connections per provider gateway address (spreads exchanges over a provider's workers).
    peer_connections: int = 1
    limits: Limits = Limits()
    # [metrics] listen: HOST:PORT of /metrics (Prometheus), served by the primary; "" = off.
    metrics_listen: str = ""
    # [logging] format: "text" (default) or "json" (one object per line, with ids).
    log_format: str = "text"
    # The gateway's NATS identity (required with nats_url): the servers' CA, its certificate and key.
    nats_ca: Path | None = None
    nats_certificate: Path | None = None
    nats_key: Path | None = None
    # The replay window in NATS KV, shared with the member's other gateways (else per host).
    shared_replay: bool = False

    @property
    def member(self) -> str:
        return str(self.gateway_id.member)
