"""What the Cedar decision point allows and denies, and why it says so."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import EXPORT_ALL, GET_PERSON, GET_VEHICLE, POPULATION, RequestFactory

from crossway.core.ids import MethodId
from policies import CedarDecisionPoint

PointFactory = Callable[..., CedarDecisionPoint]

TAX_READS = f"""
@id("tax-reads")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{POPULATION}"
);
"""


def test_a_subsystem_named_by_a_permit_is_allowed(make_point: PointFactory, request_for: RequestFactory) -> None:
    decision = make_point(TAX_READS).decide(request_for())
    assert decision.allowed
    assert decision.policy_ids == ("tax-reads",)
    assert decision.reason == "permitted by tax-reads"
    assert decision.policy_version == "test"


def test_another_subsystem_of_the_same_member_is_denied_by_default(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    decision = make_point(TAX_READS).decide(request_for("EE/GOV/70000001/customs"))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert decision.reason == "no permit matched"


def test_a_permit_for_one_method_does_not_allow_another(make_point: PointFactory, request_for: RequestFactory) -> None:
    assert not make_point(TAX_READS).decide(request_for(method=EXPORT_ALL)).allowed


def test_every_subsystem_of_a_member_is_allowed_by_principal_in_member(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point('permit (principal in Crossway::Member::"EE/GOV/70000001", action, resource);')
    assert point.decide(request_for("EE/GOV/70000001/customs")).allowed
    assert not point.decide(request_for("EE/GOV/70000009/customs")).allowed


def test_a_registry_group_allows_its_members_and_only_them(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point('permit (principal in Crossway::Group::"health", action, resource);')
    assert point.decide(request_for("EE/COM/1/clinic", groups=("health", "other"))).allowed
    assert not point.decide(request_for("EE/COM/1/clinic", groups=("other",))).allowed


def test_a_local_group_lists_subsystems_and_whole_members(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point(
        {
            "access.cedar": 'permit (principal in Crossway::LocalGroup::"auditors", action, resource);',
            "local-groups.json": '{"auditors": ["EE/GOV/70000009/audit", "EE/GOV/70000010"]}',
        }
    )
    assert point.decide(request_for("EE/GOV/70000009/audit")).allowed
    assert point.decide(request_for("EE/GOV/70000010/anything")).allowed
    assert not point.decide(request_for("EE/GOV/70000009/other")).allowed
    # A registry group of the same name is a different entity: it cannot claim a local group.
    assert not point.decide(request_for("EE/COM/1/x", groups=("auditors",))).allowed


def test_a_service_action_group_permits_every_method_of_that_service_only(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point('permit (principal, action in Crossway::Action::"population.v1.PersonRegistry/*", resource);')
    assert point.decide(request_for(method=GET_PERSON)).allowed
    assert point.decide(request_for(method=EXPORT_ALL)).allowed
    assert not point.decide(request_for(method=GET_VEHICLE)).allowed


def test_forbid_beats_permit_and_names_the_forbid(make_point: PointFactory, request_for: RequestFactory) -> None:
    point = make_point(
        TAX_READS + '@id("no-tax")\nforbid (principal == Crossway::Subsystem::"EE/GOV/70000001/tax", action, resource);'
    )
    decision = point.decide(request_for())
    assert not decision.allowed
    assert decision.policy_ids == ("no-tax",)
    assert decision.reason == "forbidden by no-tax"


def test_a_purpose_condition_reads_the_context(make_point: PointFactory, request_for: RequestFactory) -> None:
    point = make_point('@id("p") permit (principal, action, resource) when { context.purpose == "tax-assessment" };')
    assert point.decide(request_for(purpose="tax-assessment")).allowed
    assert not point.decide(request_for(purpose="curiosity")).allowed
    assert not point.decide(request_for()).allowed


def test_end_user_claims_are_tags_with_ints_and_bools_as_text(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point(
        "permit (principal, action, resource) when {\n"
        '  context.user_id == "EE38001010000" &&\n'
        '  context.user.hasTag("loa") && context.user.getTag("loa") == "3" &&\n'
        '  context.user.hasTag("doctor") && context.user.getTag("doctor") == "true"\n'
        "};"
    )
    claims = {"loa": 3, "doctor": True}
    assert point.decide(request_for(user_id="EE38001010000", user_claims=claims)).allowed
    assert not point.decide(request_for(user_id="EE38001010000", user_claims={"loa": 3})).allowed
    assert not point.decide(request_for(user_claims=claims)).allowed


def test_time_and_client_attributes_are_in_the_context(make_point: PointFactory, request_for: RequestFactory) -> None:
    point = make_point(
        "permit (principal, action, resource) when {\n"
        '  context.client.member_class == "GOV" && context.client.instance == "EE" &&\n'
        "  context.hour_utc >= 8 && context.hour_utc < 18 && context.time > 0\n"
        "};"
    )
    ten_utc = 1_700_000_000_000 - (1_700_000_000_000 % 86_400_000) + 10 * 3_600_000
    assert point.decide(request_for(now_ms=ten_utc)).allowed
    assert not point.decide(request_for(now_ms=ten_utc + 10 * 3_600_000)).allowed
    assert not point.decide(request_for("EE/COM/1/x", now_ms=ten_utc)).allowed


def test_a_method_outside_the_bundle_is_denied_with_an_error(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    point = make_point("permit (principal, action, resource);")
    unknown = MethodId.parse(f"{POPULATION}/DeletePerson")
    decision = point.decide(request_for(method=unknown))
    assert not decision.allowed
    assert decision.reason == "method not in policy bundle"
    assert "DeletePerson" in decision.errors[0]


def test_a_forbid_that_fails_to_evaluate_denies_even_when_a_permit_matches(
    make_point: PointFactory, request_for: RequestFactory
) -> None:
    # Cedar skips a policy whose condition errors; for a forbid that would let the call through.
    point = make_point(
        '@id("ok") permit (principal, action, resource);\n'
        '@id("overflow") forbid (principal, action, resource) when { context.time + 9223372036854775807 > 0 };'
    )
    decision = point.decide(request_for(now_ms=1))
    assert not decision.allowed
    assert decision.policy_ids == ("overflow",)
    assert "fail closed" in decision.reason
    assert "overflow" in decision.errors[0]


def test_a_permit_that_fails_to_evaluate_does_not_allow(make_point: PointFactory, request_for: RequestFactory) -> None:
    point = make_point(
        '@id("overflow") permit (principal, action, resource) when { context.time + 9223372036854775807 > 0 };'
    )
    decision = point.decide(request_for(now_ms=1))
    assert not decision.allowed
    assert decision.reason == "no permit matched"
    assert decision.errors


def test_an_internal_failure_becomes_a_deny_with_the_error(
    make_point: PointFactory, request_for: RequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = make_point("permit (principal, action, resource);")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("policies.point.cedarpy.is_authorized", boom)
    decision = point.decide(request_for())
    assert not decision.allowed
    assert decision.errors == ("RuntimeError: engine exploded",)
