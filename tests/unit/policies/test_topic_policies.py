"""Topic policies: deny by default, per topic, with the purpose in context and @fields kept."""

from __future__ import annotations

import pytest

from crossway.core.ids import SubsystemId
from policies import PolicyInvalid, TopicPolicies, TopicRequest

TOPIC = "EE/GOV/70000002/population/address-changes"
TAX = SubsystemId.parse("EE/GOV/70000001/tax")
BUSINESS = SubsystemId.parse("EE/GOV/70000003/business")
POLICY = f"""
@id("tax")
permit (principal == Crossway::Subsystem::"{TAX}", action == Crossway::Action::"{TOPIC}", resource)
when {{ context.purpose == "taxation" }};

@id("business")
@fields("national_id, address")
permit (principal == Crossway::Subsystem::"{BUSINESS}", action in Crossway::Action::"topics/*", resource);
"""


def _point() -> TopicPolicies:
    point = TopicPolicies()
    point.load({"t.cedar": POLICY}, {TOPIC: "population.v1.AddressChanged"})
    return point


def test_a_permit_with_fields_keeps_them_for_minimization() -> None:
    decision = _point().decide(TopicRequest(BUSINESS, frozenset(), TOPIC, "any", 7, 0))
    assert decision.allowed and decision.fields == frozenset({"national_id", "address"})
    whole = _point().decide(TopicRequest(TAX, frozenset(), TOPIC, "taxation", 7, 0))
    assert whole.allowed and whole.fields is None


def test_deny_by_default_and_on_the_wrong_purpose_or_an_unknown_topic() -> None:
    point = _point()
    assert not point.decide(TopicRequest(TAX, frozenset(), TOPIC, "marketing", 1, 0)).allowed
    other = SubsystemId.parse("EE/GOV/70000005/benefits")
    assert point.decide(TopicRequest(other, frozenset(), TOPIC, "taxation", 1, 0)).no_permit
    assert not point.decide(TopicRequest(TAX, frozenset(), f"{TOPIC}-x", "taxation", 1, 0)).allowed
    assert not TopicPolicies().decide(TopicRequest(TAX, frozenset(), TOPIC, "taxation", 1, 0)).allowed


def test_a_policy_naming_a_topic_this_gateway_does_not_publish_fails_to_load() -> None:
    bad = f'permit (principal, action == Crossway::Action::"{TOPIC}-typo", resource);'
    with pytest.raises(PolicyInvalid):
        TopicPolicies().load({"t.cedar": bad}, {TOPIC: "population.v1.AddressChanged"})
