"""The ``[delivery]`` table of a gateway's TOML file: registered delivery's own settings.

Read from the same file as :mod:`gateway.shared.config` (its path is ``GatewayConfig.source``),
once, validated, into a frozen value; a bad value fails start-up naming the file and key.

    [delivery]
    enabled = true                   # serve crossway.v1.Delivery and PeerDelivery
    policy_dir = "policies/delivery" # message policies (Cedar); none → every relay is refused
    retention_days = 30              # how long messages, state and duplicates are kept
    max_message_bytes = 524288       # inline payload limit (larger: attachments)
    relay_timeout_s = 10             # one relay attempt
    backoff_s = 0.5                  # first retry delay, doubled per attempt, with full jitter
    backoff_max_s = 30
    ack_wait_s = 30                  # a relay or expiry job held by a process that died comes back after this
    handover_ack_wait_s = 60         # a received message not acknowledged comes back after this
    max_in_flight = 256              # relays and forwards in progress at once
    topic_policy_dir = "policies/topics"  # topic policies (issue 15); none → every subscriber refused
    topic_ttl_days = 7               # a topic event not delivered to a subscriber by then fails

    [[delivery.push]]                # hand a mailbox's messages to a backend method instead of Receive
    mailbox = "EE/COM/70000003/business"
    adapter = "grpc"                 # the payload's bytes go through as the request
    address = "127.0.0.1:50051"
    method = "/business.v1.BusinessRegister/FileDocument"
    timeout_s = 10
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError, CrosswayError
from crossway.core.ids import SubsystemId

__all__ = ["DeliveryConfig", "PushTarget", "load_delivery_config"]


@dataclass(frozen=True, slots=True)
class PushTarget:
    mailbox: SubsystemId
    adapter: str
    address: str
    method: str  # a gRPC path, /package.Service/Method
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    enabled: bool = True
    policy_dir: Path | None = None
    retention_days: float = 30.0
    max_message_bytes: int = 512 * 1024
    relay_timeout_s: float = 10.0
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    ack_wait_s: float = 30.0
    handover_ack_wait_s: float = 60.0
    max_in_flight: int = 256
    push: tuple[PushTarget, ...] = ()
    max_attachment_bytes: int = 2 * 1024 * 1024 * 1024
    chunk_bytes: int = 256 * 1024
    topic_policy_dir: Path | None = None
    topic_ttl_days: float = 7.0

    @property
    def retention_s(self) -> float:
        return self.retention_days * 86_400


def _fail(source: Path, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"{source}: [delivery] {key}: {problem}", hint=hint)


def _number(source: Path, table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail(source, key, f"must be a positive number, got {value!r}", f"e.g. {key} = {default}")
    return float(value)


def _push(source: Path, raw: Any) -> tuple[PushTarget, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise _fail(source, "push", "must be an array of tables", "write [[delivery.push]] entries")
    targets = []
    for n, entry in enumerate(raw):
        key = f"push[{n}]"
        try:
            mailbox = SubsystemId.parse(str(entry.get("mailbox", "")))
        except CrosswayError as exc:
            raise _fail(source, f"{key}.mailbox", exc.message, exc.hint) from exc
        method = entry.get("method", "")
        if not isinstance(method, str) or not method.startswith("/") or method.count("/") != 2:
            raise _fail(source, f"{key}.method", f"{method!r} is not a gRPC path", 'e.g. "/pkg.Service/Method"')
        address = entry.get("address", "")
        if not isinstance(address, str) or not address:
            raise _fail(source, f"{key}.address", "is required", 'e.g. address = "127.0.0.1:50051"')
        adapter = entry.get("adapter", "grpc")
        if adapter != "grpc":
            # REST and SAP need their mapping tables; pushing through them is not wired yet.
            raise _fail(source, f"{key}.adapter", f"adapter {adapter!r} cannot push yet", 'adapter = "grpc"')
        targets.append(PushTarget(mailbox, adapter, address, method, _number(source, entry, "timeout_s", 10.0)))
    return tuple(targets)


def load_delivery_config(source: Path) -> DeliveryConfig:
    """The ``[delivery]`` table of the gateway file at ``source`` (defaults when it is absent)."""
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    table = raw.get("delivery", {})
    if not isinstance(table, dict):
        raise _fail(source, "delivery", "must be a table", "write a [delivery] table")
    known = set(DeliveryConfig.__dataclass_fields__)
    unknown = sorted(set(table) - known)
    if unknown:
        raise _fail(source, unknown[0], "is not a setting of [delivery]", f"known: {', '.join(sorted(known))}")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail(source, "enabled", f"must be true or false, got {enabled!r}", "enabled = true")
    policy_dir, topic_dir = table.get("policy_dir"), table.get("topic_policy_dir")
    for key, value in (("policy_dir", policy_dir), ("topic_policy_dir", topic_dir)):
        if value is not None and not isinstance(value, str):
            raise _fail(source, key, "must be a path string", f'{key} = "policies/{key[:5]}"')
    defaults = DeliveryConfig()
    return DeliveryConfig(
        enabled=enabled,
        policy_dir=(source.parent / policy_dir).resolve() if policy_dir else None,
        retention_days=_number(source, table, "retention_days", defaults.retention_days),
        max_message_bytes=int(_number(source, table, "max_message_bytes", defaults.max_message_bytes)),
        relay_timeout_s=_number(source, table, "relay_timeout_s", defaults.relay_timeout_s),
        backoff_s=_number(source, table, "backoff_s", defaults.backoff_s),
        backoff_max_s=_number(source, table, "backoff_max_s", defaults.backoff_max_s),
        ack_wait_s=_number(source, table, "ack_wait_s", defaults.ack_wait_s),
        handover_ack_wait_s=_number(source, table, "handover_ack_wait_s", defaults.handover_ack_wait_s),
        max_in_flight=int(_number(source, table, "max_in_flight", defaults.max_in_flight)),
        push=_push(source, table.get("push", [])),
        max_attachment_bytes=int(_number(source, table, "max_attachment_bytes", defaults.max_attachment_bytes)),
        chunk_bytes=int(_number(source, table, "chunk_bytes", defaults.chunk_bytes)),
        topic_policy_dir=(source.parent / topic_dir).resolve() if isinstance(topic_dir, str) else None,
        topic_ttl_days=_number(source, table, "topic_ttl_days", defaults.topic_ttl_days),
    )
