"""Message policies: deny by default, per type and mailbox, reasons named, bad files refused."""

from __future__ import annotations

import pytest

from crossway.core.ids import SubsystemId
from policies import PolicyInvalid
from policies.messages import MessagePolicies, MessageRequest

COURT = SubsystemId.parse("EE/GOV/70000004/court")
CLERK = SubsystemId.parse("EE/GOV/70000004/clerk")
TAX = SubsystemId.parse("EE/GOV/70000001/tax")
BUSINESS = SubsystemId.parse("EE/COM/70000003/business")
TYPES = ("court.v1.Summons", "crossway.v1.Document")

POLICY = """
@id("court-sends-summons")
permit (
  principal in Crossway::Member::"EE/GOV/70000004",
  action == Crossway::Action::"court.v1.Summons",
  resource == Crossway::Mailbox::"EE/COM/70000003/business"
) when { context.purpose == "summons" };

@id("documents-from-auditors")
permit (principal in Crossway::LocalGroup::"auditors", action in Crossway::Action::"messages/*", resource);

@id("no-clerk")
forbid (principal == Crossway::Subsystem::"EE/GOV/70000004/clerk", action, resource);
"""


@pytest.fixture
def policies() -> MessagePolicies:
    point = MessagePolicies()
    point.load(
        {"delivery.cedar": POLICY, "local-groups.json": '{"auditors": ["EE/GOV/70000001/tax"]}'},
        TYPES,
        [BUSINESS],
        version="v1",
    )
    return point


def _ask(sender: SubsystemId, message_type: str = "court.v1.Summons", purpose: str = "summons") -> MessageRequest:
    return MessageRequest(sender, frozenset(), BUSINESS, message_type, purpose=purpose, now_ms=1_700_000_000_000)


def test_a_permitted_sender_type_and_purpose_is_allowed_naming_the_policy(policies: MessagePolicies) -> None:
    decision = policies.decide(_ask(COURT))
    assert decision.allowed and decision.policy_ids == ("court-sends-summons",)
    assert decision.policy_version == "v1"


def test_another_purpose_finds_no_permit(policies: MessagePolicies) -> None:
    decision = policies.decide(_ask(COURT, purpose="marketing"))
    assert not decision.allowed and decision.reason == "no permit matched"


def test_a_forbid_beats_a_permit_and_is_named(policies: MessagePolicies) -> None:
    decision = policies.decide(_ask(CLERK))
    assert not decision.allowed and decision.policy_ids == ("no-clerk",)
    assert "forbidden by no-clerk" in decision.reason


def test_local_groups_and_the_messages_group_work(policies: MessagePolicies) -> None:
    assert policies.decide(_ask(TAX, "crossway.v1.Document", "")).allowed


def test_a_type_no_mailbox_accepts_is_denied(policies: MessagePolicies) -> None:
    assert not policies.decide(_ask(COURT, "court.v1.Other")).allowed


def test_without_policies_everything_is_denied() -> None:
    assert not MessagePolicies().decide(_ask(COURT)).allowed


def test_a_policy_naming_an_unknown_type_is_refused_at_load() -> None:
    text = 'permit (principal, action == Crossway::Action::"court.v1.Sumons", resource);'
    with pytest.raises(PolicyInvalid, match=r"delivery\.cedar"):
        MessagePolicies().load({"delivery.cedar": text}, TYPES, [BUSINESS])
