"""The Cedar schema: fixed entity types from ``crossway.cedarschema`` plus generated actions.

Naming, fixed here and relied on by policy authors:

- entity types live in the ``Crossway`` namespace: ``Crossway::Subsystem`` (principal),
  ``Crossway::Member``, ``Crossway::Group`` (registry), ``Crossway::LocalGroup`` (provider),
  ``Crossway::Service`` (resource), ``Crossway::EndUser`` (claims as tags);
- entity ids are Crossway ids as written by ``crossway.core.ids`` (``EE/GOV/70000001/tax``);
- one action per gRPC method, ``Crossway::Action::"population.v1.PersonRegistry/GetPerson"``,
  each a member of the service's group ``Crossway::Action::"population.v1.PersonRegistry/*"``.

Actions are named by the gRPC method alone (not the provider subsystem): the resource already
says which provider, and a method name reads the same in every provider's policies.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from crossway.core.ids import MethodId

__all__ = [
    "ACTION",
    "BASE_SCHEMA_PATH",
    "CONTEXT_ATTRIBUTES",
    "END_USER",
    "ENTITY_TYPES",
    "GROUP",
    "LOCAL_GROUP",
    "MEMBER",
    "SERVICE",
    "SUBSYSTEM",
    "action_id",
    "schema_text",
    "service_action_group",
]

NAMESPACE = "Crossway"
ACTION = f"{NAMESPACE}::Action"
SUBSYSTEM = f"{NAMESPACE}::Subsystem"
MEMBER = f"{NAMESPACE}::Member"
GROUP = f"{NAMESPACE}::Group"
LOCAL_GROUP = f"{NAMESPACE}::LocalGroup"
SERVICE = f"{NAMESPACE}::Service"
END_USER = f"{NAMESPACE}::EndUser"
ENTITY_TYPES = (SUBSYSTEM, MEMBER, GROUP, LOCAL_GROUP, SERVICE, END_USER)

# Kept in step with CallContext in crossway.cedarschema (a test checks); used for
# "did you mean" hints when a policy names an attribute that does not exist.
CONTEXT_ATTRIBUTES = ("purpose", "user_id", "user", "time", "hour_utc", "client")

BASE_SCHEMA_PATH = Path(__file__).with_name("crossway.cedarschema")


def action_id(method: MethodId) -> str:
    """The Cedar action id of a method: ``population.v1.PersonRegistry/GetPerson``."""
    return f"{method.service.grpc_service}/{method.name}"


def service_action_group(grpc_service: str) -> str:
    """The action group holding every method of a gRPC service: ``population.v1.PersonRegistry/*``."""
    return f"{grpc_service}/*"


def _action_declarations(methods: Iterable[MethodId]) -> str:
    # Two providers may serve the same gRPC service: one action per method name suffices.
    by_service: dict[str, set[str]] = {}
    for method in methods:
        by_service.setdefault(method.service.grpc_service, set()).add(method.name)
    lines: list[str] = []
    for grpc_service in sorted(by_service):
        group = service_action_group(grpc_service)
        lines.append(f'  action "{group}";')
        for name in sorted(by_service[grpc_service]):
            lines.append(
                f'  action "{grpc_service}/{name}" in [Action::"{group}"]\n'
                "    appliesTo { principal: Subsystem, resource: Service, context: CallContext };"
            )
    return "\n".join(lines)


def schema_text(methods: Iterable[MethodId], base: str | None = None) -> str:
    """The full schema: the base file with the generated actions inserted into its namespace.

    Cedar refuses a second ``namespace Crossway`` block, so the actions go in just before the
    base file's last closing brace. Method and service names come from ``MethodId``, whose
    charset has no quotes or braces, so plain interpolation cannot break the syntax.
    """
    text = BASE_SCHEMA_PATH.read_text(encoding="utf-8") if base is None else base
    end = text.rstrip().rfind("}")
    if end < 0:
        raise ValueError("the base schema has no namespace block")
    generated = "  // --- generated: one action per served method ---\n" + _action_declarations(methods)
    return f"{text[:end]}{generated}\n{text[end:]}"
