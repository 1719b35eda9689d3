"""Per-service slices: each service's pre-parsed policy set holds only policies that can apply.

A policy can apply to a service only if its scope admits the service's resource and one of
its actions. Scope is checked before conditions in Cedar (the scope is the head of the
policy's conjunction), so dropping a policy whose scope cannot match changes neither the
decision nor the evaluation errors — the slice decides exactly as the whole set would. The
test suite checks this against an unsliced bundle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cedarpy
from cedarpy import pst

from crossway.core.ids import ServiceId
from policies.loading import LoadedPolicy
from policies.obligations import Obligations
from policies.schema import ACTION, CONTEXT_ATTRIBUTES, SERVICE, service_action_group

__all__ = ["ServiceSlice", "build_slice", "slice_policies"]


@dataclass(frozen=True, slots=True, eq=False)
class ServiceSlice:
    """What a decision for one service needs, parsed once at load time."""

    service: ServiceId
    methods: frozenset[str]
    policy_set: cedarpy.PolicySet
    policy_ids: tuple[str, ...]
    # Ids of the permits in this slice: an evaluation error in any other policy (a forbid)
    # denies, because Cedar would otherwise skip it (fail closed).
    permits: frozenset[str]
    # The service entity and its action entities; the principal is added per request.
    entities: cedarpy.Entities
    resource: dict[str, str]
    # The context attributes this slice's policies mention; the decision point sends only
    # these (parsing the context is most of a decision's cost in Cedar).
    context_keys: frozenset[str] = frozenset(CONTEXT_ATTRIBUTES)
    obligations: Mapping[str, Obligations] = field(default_factory=lambda: MappingProxyType({}))
    # Per-caller entity sets (principal + end user added to ``entities``), filled by the
    # decision point. It lives and dies with this slice, so swapping a bundle clears it.
    caller_entities: dict[Any, cedarpy.Entities] = field(default_factory=dict)


_ANY = None  # resource scope admitting every service
_NONE = ""  # resource scope admitting no service


def _resource_key(scope: pst.PrincipalOrResourceConstraint) -> str | None:
    """The one service id a resource scope admits, ``_ANY`` or ``_NONE``."""
    if isinstance(scope, pst.ScopeAny):
        return _ANY
    if isinstance(scope, pst.ScopeIs):
        return _ANY if str(scope.entity_type) == SERVICE else _NONE
    # Eq, In and IsIn all name one entity. Services have no parents, so `in` matches only
    # the service itself. A slot cannot occur (templates are refused), but keep it if so.
    entity = scope.entity
    if isinstance(entity, pst.Slot):
        return _ANY
    return entity.id if str(entity.type) == SERVICE else _NONE


def _action_admits(scope: pst.ActionConstraint, action_ids: frozenset[str]) -> bool:
    if isinstance(scope, pst.ScopeAny):
        return True
    entities = (scope.entity,) if isinstance(scope, pst.ActionEq) else scope.entities
    return any(str(e.type) == ACTION and e.id in action_ids for e in entities)


def _action_ids(service: ServiceId, methods: frozenset[str]) -> frozenset[str]:
    group = service_action_group(service.grpc_service)
    return frozenset(f"{service.grpc_service}/{m}" for m in methods) | {group}


def slice_policies(
    policies: Sequence[LoadedPolicy], services: Mapping[ServiceId, frozenset[str]]
) -> dict[ServiceId, list[LoadedPolicy]]:
    """For each service (with its method names), the policies whose scope can match it, in load order."""
    # Index by the resource a policy names, so each service looks only at its own policies and
    # the resource-unconstrained ones, not at every policy.
    by_resource: dict[str | None, list[int]] = {}
    for index, policy in enumerate(policies):
        by_resource.setdefault(_resource_key(policy.template.resource), []).append(index)
    anywhere = by_resource.get(_ANY, [])
    result: dict[ServiceId, list[LoadedPolicy]] = {}
    for service, methods in services.items():
        actions = _action_ids(service, methods)
        candidates = sorted(anywhere + by_resource.get(str(service), []))
        result[service] = [policies[i] for i in candidates if _action_admits(policies[i].template.action, actions)]
    return result


_CONTEXT_WORD = re.compile(r"\bcontext\b(\s*(\.\s*(\w+)|\[\s*\"(\w+)\"|has\s+(\w+)))?")


def context_keys(sources: Sequence[str]) -> frozenset[str]:
    """The context attributes the policy texts can read.

    Conservative on purpose: an attribute counts as read when ``context.x``, ``context["x"]``
    or ``context has x`` appears anywhere in the text, comments included, and any other use of
    ``context`` (passing it whole) counts as reading everything. An attribute left out that a
    policy did read would make it error — which never allows (see the decision point) — so a
    wrong guess here can only deny, never widen access.
    """
    keys: set[str] = set()
    for text in sources:
        if not text:  # no source kept: assume the policy reads everything
            return frozenset(CONTEXT_ATTRIBUTES)
        for match in _CONTEXT_WORD.finditer(text):
            name = match.group(3) or match.group(4) or match.group(5)
            if name is None:
                return frozenset(CONTEXT_ATTRIBUTES)
            keys.add(name)
    return frozenset(keys & set(CONTEXT_ATTRIBUTES))


def build_slice(service: ServiceId, methods: frozenset[str], chosen: Sequence[LoadedPolicy]) -> ServiceSlice:
    """Parse one service's policies and base entities once, for every later decision."""
    names = methods
    group = service_action_group(service.grpc_service)
    policy_set = cedarpy.PolicySet.from_pst(
        pst.PolicySet(
            templates=pst.FrozenMap(),
            static_policies=pst.FrozenMap({p.id: p.template for p in chosen}),
            template_links=(),
        )
    )
    resource = {"type": SERVICE, "id": str(service)}
    base: list[dict[str, Any]] = [
        {
            "uid": resource,
            "attrs": {"provider": str(service.subsystem), "grpc_service": service.grpc_service},
            "parents": [],
        },
        {"uid": {"type": ACTION, "id": group}, "attrs": {}, "parents": []},
    ]
    # Action entities are listed explicitly: a pre-parsed Entities handle does not pick up
    # the action hierarchy from the schema, and `action in Action::"svc/*"` needs it.
    base += [
        {
            "uid": {"type": ACTION, "id": f"{service.grpc_service}/{m}"},
            "attrs": {},
            "parents": [{"type": ACTION, "id": group}],
        }
        for m in sorted(names)
    ]
    return ServiceSlice(
        service=service,
        methods=names,
        policy_set=policy_set,
        policy_ids=tuple(p.id for p in chosen),
        permits=frozenset(p.id for p in chosen if p.effect == "permit"),
        entities=cedarpy.Entities.from_json_str(json.dumps(base)),
        resource=resource,
        context_keys=context_keys([p.source for p in chosen]),
        obligations=MappingProxyType({p.id: p.obligations for p in chosen}),
    )
