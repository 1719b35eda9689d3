"""Identifiers in X-Road's hierarchy, written with ``/``.

- member:    ``INSTANCE/CLASS/CODE``                       e.g. ``EE/GOV/70000001``
- subsystem: ``INSTANCE/CLASS/CODE/SUBSYSTEM``             e.g. ``EE/GOV/70000001/population``
- service:   ``<subsystem>/<grpc service full name>``      e.g. ``…/population/population.v1.PersonRegistry``
- method:    ``<service>/<grpc method>``                   e.g. ``…/population.v1.PersonRegistry/GetPerson``
- gateway:   ``<member>/<gateway name>``                   e.g. ``EE/GOV/70000001/gw1``

One parser and one formatter per kind; ``parse(str(x)) == x`` always holds. The charset is
strict on purpose: ids end up in certificate URI SANs, Cedar entity ids, NATS subjects and
file names, and a permissive charset is how path-wildcard bypasses happen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossway.core.errors import InvalidIdentifier

__all__ = [
    "GatewayId",
    "MemberId",
    "MethodId",
    "ServiceId",
    "SubsystemId",
    "URI_SCHEME",
]

URI_SCHEME = "crossway://"

# Instance and class: upper-case letters, digits, '-' (X-Road practice: "EE", "GOV", "COM").
_UPPER = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
# Member code, subsystem and gateway names: letters, digits, '-', '_', '.' (no '/', no '*').
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A gRPC service full name: dotted identifiers (protobuf package + service).
_GRPC_SERVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_GRPC_METHOD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _split(text: str, kind: str, parts: int) -> list[str]:
    if not isinstance(text, str) or not text:
        raise InvalidIdentifier(f"empty {kind} id", hint=f"write the {kind} id as {_FORMS[kind]}")
    pieces = text.split("/")
    if len(pieces) != parts:
        raise InvalidIdentifier(
            f"{kind} id {text!r} has {len(pieces)} part(s), expected {parts}",
            hint=f"write the {kind} id as {_FORMS[kind]}",
        )
    return pieces


def _check(value: str, pattern: re.Pattern[str], what: str, text: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidIdentifier(
            f"{what} {value!r} in {text!r} has characters outside the allowed set",
            hint=_HINTS[pattern.pattern],
        )
    return value


_FORMS = {
    "member": "INSTANCE/CLASS/CODE, e.g. EE/GOV/70000001",
    "subsystem": "INSTANCE/CLASS/CODE/SUBSYSTEM, e.g. EE/GOV/70000001/population",
    "service": "INSTANCE/CLASS/CODE/SUBSYSTEM/package.Service, e.g. EE/GOV/70000001/population/pop.v1.Registry",
    "method": "<service id>/Method, e.g. EE/GOV/70000001/population/population.v1.PersonRegistry/GetPerson",
    "gateway": "INSTANCE/CLASS/CODE/NAME, e.g. EE/GOV/70000001/gw1",
}
_HINTS = {
    _UPPER.pattern: "instance and class use A-Z, 0-9 and '-' (at most 32 characters)",
    _CODE.pattern: "codes and names use letters, digits, '.', '_' and '-', start with a letter or digit (at most 64)",
    _GRPC_SERVICE.pattern: "a gRPC service name is a dotted protobuf name, e.g. population.v1.PersonRegistry",
    _GRPC_METHOD.pattern: "a gRPC method name is a protobuf identifier, e.g. GetPerson",
}


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    instance: str
    member_class: str
    code: str

    @classmethod
    def parse(cls, text: str) -> MemberId:
        i, c, m = _split(text, "member", 3)
        return cls(
            _check(i, _UPPER, "instance", text),
            _check(c, _UPPER, "member class", text),
            _check(m, _CODE, "member code", text),
        )

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.code}"

    def subsystem(self, name: str) -> SubsystemId:
        return SubsystemId.parse(f"{self}/{name}")

    def gateway(self, name: str) -> GatewayId:
        return GatewayId.parse(f"{self}/{name}")

    @property
    def uri(self) -> str:
        return URI_SCHEME + str(self)


@dataclass(frozen=True, slots=True, order=True)
class SubsystemId:
    member: MemberId
    name: str

    @classmethod
    def parse(cls, text: str) -> SubsystemId:
        i, c, m, s = _split(text, "subsystem", 4)
        member = MemberId(
            _check(i, _UPPER, "instance", text),
            _check(c, _UPPER, "member class", text),
            _check(m, _CODE, "member code", text),
        )
        return cls(member, _check(s, _CODE, "subsystem", text))

    def __str__(self) -> str:
        return f"{self.member}/{self.name}"

    def service(self, grpc_service: str) -> ServiceId:
        return ServiceId.parse(f"{self}/{grpc_service}")

    @property
    def uri(self) -> str:
        return URI_SCHEME + str(self)


@dataclass(frozen=True, slots=True, order=True)
class ServiceId:
    subsystem: SubsystemId
    grpc_service: str

    @classmethod
    def parse(cls, text: str) -> ServiceId:
        i, c, m, s, g = _split(text, "service", 5)
        return cls(SubsystemId.parse(f"{i}/{c}/{m}/{s}"), _check(g, _GRPC_SERVICE, "gRPC service", text))

    def __str__(self) -> str:
        return f"{self.subsystem}/{self.grpc_service}"

    def method(self, name: str) -> MethodId:
        return MethodId(self, _check(name, _GRPC_METHOD, "gRPC method", f"{self}/{name}"))


@dataclass(frozen=True, slots=True, order=True)
class MethodId:
    service: ServiceId
    name: str

    @classmethod
    def parse(cls, text: str) -> MethodId:
        *head, name = _split(text, "method", 6)
        return ServiceId.parse("/".join(head)).method(name)

    def __str__(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def grpc_path(self) -> str:
        """The HTTP/2 path a gRPC stub uses: ``/package.Service/Method``."""
        return f"/{self.service.grpc_service}/{self.name}"


@dataclass(frozen=True, slots=True, order=True)
class GatewayId:
    member: MemberId
    name: str

    @classmethod
    def parse(cls, text: str) -> GatewayId:
        i, c, m, g = _split(text, "gateway", 4)
        return cls(MemberId.parse(f"{i}/{c}/{m}"), _check(g, _CODE, "gateway name", text))

    def __str__(self) -> str:
        return f"{self.member}/{self.name}"
