"""Obligations: @fields and @quota on permits, checked at load, combined per decision."""

from __future__ import annotations

import pytest

from crossway.core.ids import MethodId, SubsystemId
from policies import AccessRequest, CedarDecisionPoint, PolicyBundle, PolicyInvalid, Quota
from policies.slicing import context_keys

SERVICE = "EE/GOV/70000002/population/population.v1.PersonRegistry"
METHODS = [MethodId.parse(f"{SERVICE}/GetPerson"), MethodId.parse(f"{SERVICE}/ListPersons")]
TAX = "EE/GOV/70000001/tax"

POLICY = f"""
@id("names-only")
@fields("name, address.city")
@quota("5/10s")
permit (principal == Crossway::Subsystem::"{TAX}", action, resource)
when {{ context.purpose == "tax" }};

@id("everything")
permit (principal == Crossway::Subsystem::"{TAX}", action, resource)
when {{ context.purpose == "audit" }};
"""


def _decide(purpose: str) -> tuple[bool, frozenset[str] | None, tuple[Quota, ...]]:
    point = CedarDecisionPoint(PolicyBundle.from_texts({"p.cedar": POLICY}, METHODS))
    d = point.decide(AccessRequest(SubsystemId.parse(TAX), frozenset(), METHODS[0], purpose=purpose))
    return d.allowed, d.fields, d.quotas


def test_a_permit_with_fields_and_quota_carries_them_into_the_decision() -> None:
    assert _decide("tax") == (True, frozenset({"name", "address.city"}), (Quota("names-only", 5, 10),))


def test_a_permit_without_obligations_allows_every_field_and_no_quota() -> None:
    assert _decide("audit") == (True, None, ())


@pytest.mark.parametrize(
    ("annotation", "needle"),
    [('@quota("lots")', "not a rate"), ('@fields("na me")', "bad name"), ('@quota("0/s")', "not a rate")],
)
def test_a_malformed_obligation_is_rejected_with_its_line(annotation: str, needle: str) -> None:
    text = f"\n\n{annotation}\npermit (principal, action, resource);\n"
    with pytest.raises(PolicyInvalid) as info:
        PolicyBundle.from_texts({"bad.cedar": text}, METHODS)
    assert "bad.cedar:3:" in info.value.message and needle in info.value.message


def test_obligations_on_a_forbid_are_rejected() -> None:
    with pytest.raises(PolicyInvalid, match="belong on a permit"):
        PolicyBundle.from_texts({"f.cedar": '@fields("name")\nforbid (principal, action, resource);'}, METHODS)


def test_context_keys_are_those_the_policies_mention_and_everything_when_context_is_passed_whole() -> None:
    assert context_keys(['when { context.purpose == "x" && context has user_id }']) == {"purpose", "user_id"}
    assert context_keys(['when { context["hour_utc"] < 3 }']) == {"hour_utc"}
    assert len(context_keys(["when { context == {} }"])) == 6
    assert context_keys(["permit (principal, action, resource);"]) == set()
