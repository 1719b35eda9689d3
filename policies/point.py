"""Decision points: the Protocol the provider gateway calls, the Cedar one, and a static twin.

``decide`` runs on every request, so it does only per-request work: pick the service's
pre-parsed slice, take the caller's entity set from the slice's cache (built once per caller
by adding the principal and end user to the slice's pre-parsed base: ~20 µs saved a call),
build a context holding only the attributes the slice's policies mention (Cedar's context
parsing is the largest per-call cost), and evaluate. It never raises: any
internal failure is a deny with the failure in ``errors`` (fail closed).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Protocol

import cedarpy

from policies.bundle import PolicyBundle
from policies.decision import AccessRequest, Claim, Decision
from policies.obligations import combine
from policies.schema import ACTION, END_USER, GROUP, LOCAL_GROUP, MEMBER, SUBSYSTEM, action_id
from policies.slicing import ServiceSlice

__all__ = ["CedarDecisionPoint", "DecisionPoint", "StaticDecisionPoint"]

log = logging.getLogger(__name__)

# Cedar's evaluation error text: "error while evaluating policy `<id>`: <detail>".
_ERRORED_POLICY = re.compile(r"error while evaluating policy `([^`]*)`")
_HOUR_MS = 3_600_000
# Bound on the per-slice caller cache; cleared whole when full (a cheap, rare rebuild).
_CALLER_CACHE_MAX = 4096


class DecisionPoint(Protocol):
    def decide(self, request: AccessRequest) -> Decision:
        """Allow or deny; never raises for a deny, and fails closed on internal errors."""
        ...

    @property
    def version(self) -> str:
        """The version of the policy bundle in force."""
        ...


class CedarDecisionPoint:
    """Decides with a ``PolicyBundle``; ``swap`` replaces the bundle atomically."""

    __slots__ = ("_bundle",)

    def __init__(self, bundle: PolicyBundle) -> None:
        self._bundle = bundle

    @property
    def version(self) -> str:
        return self._bundle.version

    @property
    def bundle(self) -> PolicyBundle:
        return self._bundle

    def swap(self, bundle: PolicyBundle) -> None:
        # One reference assignment (atomic under the GIL); a decide() in flight holds its own
        # reference to the old bundle and finishes with it.
        self._bundle = bundle

    def decide(self, request: AccessRequest) -> Decision:
        bundle = self._bundle  # read once: the whole decision uses one bundle
        try:
            return _decide(bundle, request)
        except Exception as exc:  # fail closed: nothing below may turn into an allow
            log.exception("policy evaluation failed for %s calling %s", request.client, request.method)
            return Decision.deny(
                "evaluation failed (fail closed)",
                errors=(f"{type(exc).__name__}: {exc}",),
                policy_version=bundle.version,
            )


class StaticDecisionPoint:
    """The in-memory twin for tests: returns one fixed decision and records every request."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.requests: list[AccessRequest] = []

    @property
    def version(self) -> str:
        return self.decision.policy_version or "static"

    def decide(self, request: AccessRequest) -> Decision:
        self.requests.append(request)
        return self.decision


def _decide(bundle: PolicyBundle, request: AccessRequest) -> Decision:
    slice_ = bundle.slices.get(request.method.service)
    if slice_ is None or request.method.name not in slice_.methods:
        return Decision.deny(
            "method not in policy bundle",
            errors=(f"{request.method} is not a method this bundle was built for",),
            policy_version=bundle.version,
        )
    # Everything the caller's entities depend on is in the key; claims are sorted so one
    # end user with the same claims hits the same entry.
    key = (request.client, request.client_groups, request.user_id, tuple(sorted(request.user_claims.items())))
    entities = slice_.caller_entities.get(key)
    if entities is None:
        entities = slice_.entities.with_added_json_str(_principal_entities(bundle, request))
        if len(slice_.caller_entities) >= _CALLER_CACHE_MAX:
            slice_.caller_entities.clear()
        slice_.caller_entities[key] = entities
    context = _context(request)
    if len(slice_.context_keys) < len(context):
        context = {k: v for k, v in context.items() if k in slice_.context_keys}
    cedar_request = {
        "principal": {"type": SUBSYSTEM, "id": str(request.client)},
        "action": {"type": ACTION, "id": action_id(request.method)},
        "resource": slice_.resource,
        "context": context,
    }
    # No schema here on purpose: policies were validated against it at load, and the entities
    # and context are built by this module (a test checks them against the schema); passing it
    # would re-check every request for ~15 µs.
    result = cedarpy.is_authorized(cedar_request, slice_.policy_set, entities)
    return _interpret(result, slice_, bundle.version)


def _interpret(result: cedarpy.AuthzResult, slice_: ServiceSlice, version: str) -> Decision:
    reasons = tuple(sorted(result.diagnostics.reasons))
    errors = tuple(result.diagnostics.errors)
    # Cedar skips a policy whose condition errors — for a forbid that would let a call through
    # that the author meant to stop. Any erroring forbid, or an error we cannot attribute, denies.
    failed = sorted({_errored_policy(e) for e in errors} - slice_.permits)
    if failed:
        ids = tuple(p for p in failed if p)
        return Decision(False, ids, f"forbid {', '.join(ids) or '?'} failed to evaluate (fail closed)", errors, version)
    if result.allowed:
        fields, quotas = combine(reasons, slice_.obligations)
        return Decision(True, reasons, f"permitted by {', '.join(reasons)}", errors, version, fields, quotas)
    if reasons:
        return Decision(False, reasons, f"forbidden by {', '.join(reasons)}", errors, version)
    return Decision(False, (), "no permit matched", errors, version)


def _errored_policy(error: str) -> str:
    match = _ERRORED_POLICY.search(error)
    return match.group(1) if match else ""


def _principal_entities(bundle: PolicyBundle, request: AccessRequest) -> str:
    client = request.client
    member = str(client.member)
    local = bundle.local_groups.get(str(client), frozenset()) | bundle.local_groups.get(member, frozenset())
    parents = [{"type": MEMBER, "id": member}]
    parents += [{"type": GROUP, "id": g} for g in sorted(request.client_groups)]
    parents += [{"type": LOCAL_GROUP, "id": g} for g in sorted(local)]
    delta: list[dict[str, Any]] = [
        {"uid": {"type": SUBSYSTEM, "id": str(client)}, "attrs": {}, "parents": parents},
        {
            "uid": {"type": END_USER, "id": request.user_id},
            "attrs": {},
            "parents": [],
            "tags": {k: _claim_text(v) for k, v in request.user_claims.items()},
        },
    ]
    # json.dumps escapes every id and claim: no caller-supplied text can change the document.
    return json.dumps(delta)


def _claim_text(value: Claim) -> str:
    # The schema types claims as strings (Cedar tags have one type); bool before int, as
    # bool is an int in Python.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _context(request: AccessRequest) -> dict[str, Any]:
    member = request.client.member
    return {
        "purpose": request.purpose,
        "user_id": request.user_id,
        "user": {"__entity": {"type": END_USER, "id": request.user_id}},
        "time": request.now_ms,
        "hour_utc": (request.now_ms // _HOUR_MS) % 24,
        "client": {
            "instance": member.instance,
            "member_class": member.member_class,
            "member": str(member),
            "subsystem": str(request.client),
        },
    }
