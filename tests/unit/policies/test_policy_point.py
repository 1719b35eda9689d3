"""The decision point's contract: atomic swap, the static twin, schema-true requests, public API."""

from __future__ import annotations

import threading
from pathlib import Path

import cedarpy
from conftest import BundleFactory, RequestFactory

import policies
from policies import CedarDecisionPoint, Decision, DecisionPoint, StaticDecisionPoint, format_policy_dir
from policies.point import _context, _principal_entities


def test_swap_replaces_the_bundle_for_the_next_decision(
    make_bundle: BundleFactory, request_for: RequestFactory
) -> None:
    point = CedarDecisionPoint(make_bundle("forbid (principal, action, resource);", version="v1"))
    assert not point.decide(request_for()).allowed
    point.swap(make_bundle("permit (principal, action, resource);", version="v2"))
    decision = point.decide(request_for())
    assert decision.allowed
    assert (decision.policy_version, point.version) == ("v2", "v2")


def test_swap_is_atomic_under_concurrent_decisions(make_bundle: BundleFactory, request_for: RequestFactory) -> None:
    # Every decision must come wholly from one bundle: allow-from-v2 or deny-from-v1, never mixed.
    v1 = make_bundle("forbid (principal, action, resource);", version="v1")
    v2 = make_bundle("permit (principal, action, resource);", version="v2")
    point = CedarDecisionPoint(v1)
    request = request_for()
    seen: list[tuple[bool, str]] = []
    stop = threading.Event()

    def decide_in_a_loop() -> None:
        while not stop.is_set():
            d = point.decide(request)
            seen.append((d.allowed, d.policy_version))

    threads = [threading.Thread(target=decide_in_a_loop) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        point.swap(v2 if i % 2 else v1)
    stop.set()
    for t in threads:
        t.join()
    assert seen
    assert set(seen) <= {(False, "v1"), (True, "v2")}


def test_the_static_twin_returns_its_decision_and_records_requests(request_for: RequestFactory) -> None:
    twin = StaticDecisionPoint(Decision(True, ("t",), "permitted by t", policy_version="fixed"))
    point: DecisionPoint = twin
    assert point.decide(request_for()).allowed
    assert point.version == "fixed"
    assert twin.requests == [request_for()]


def test_no_allow_all_decision_point_exists() -> None:
    assert not hasattr(policies, "AllowAllDecisionPoint")


def test_the_request_entities_and_context_conform_to_the_schema(
    make_bundle: BundleFactory, request_for: RequestFactory
) -> None:
    # The data path skips per-request schema checks for speed; this proves it may.
    bundle = make_bundle("permit (principal, action, resource);")
    request = request_for(groups=("g",), user_id="u", user_claims={"a": 1, "b": False, "c": "x"}, now_ms=5)
    slice_ = bundle.slices[request.method.service]
    entities = slice_.entities.with_added_json_str(_principal_entities(bundle, request), bundle.schema)
    result = cedarpy.is_authorized(
        {
            "principal": {"type": "Crossway::Subsystem", "id": str(request.client)},
            "action": {"type": "Crossway::Action", "id": "population.v1.PersonRegistry/GetPerson"},
            "resource": slice_.resource,
            "context": _context(request),
        },
        slice_.policy_set,
        entities,
        schema=bundle.schema,
    )
    assert result.allowed, result.diagnostics.errors


def test_format_policy_dir_returns_canonical_text_keeping_comments(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text('// why\npermit(principal,action,resource) when {context.purpose=="x"};\n')
    formatted = format_policy_dir(tmp_path)
    assert formatted == {"a.cedar": '// why\npermit (principal, action, resource)\nwhen { context.purpose == "x" };\n'}


def test_the_public_api_is_exactly_what_all_declares() -> None:
    for name in policies.__all__:
        assert hasattr(policies, name), name
    public = {n for n in vars(policies) if not n.startswith("_")} - {"annotations"}
    modules = {
        "bench",  # imported by the benchmark tests in the same run
        "bundle",
        "decision",
        "errors",
        "formatting",
        "groups",
        "loading",
        "messages",
        "obligations",
        "point",
        "schema",
        "slicing",
        "source",
        "topics",
    }
    assert public - modules == set(policies.__all__)
