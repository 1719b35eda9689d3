"""Audit subjects: gateway ids become NATS-safe tokens, reversibly."""

from __future__ import annotations

import pytest

from audit.trail import audit_subject, gateway_from_subject
from crossway.core.errors import InvalidIdentifier


def test_a_plain_gateway_id_becomes_one_token_per_part() -> None:
    assert audit_subject("EE/GOV/70000001/gw1") == "crossway.audit.EE.GOV.70000001.gw1"


def test_dots_and_underscores_in_ids_are_escaped_so_tokens_stay_whole() -> None:
    subject = audit_subject("EE/GOV/700.01/gw_1.a")
    assert subject == "crossway.audit.EE.GOV.700_2E01.gw_5F1_2Ea"
    assert len(subject.split(".")) == 6


@pytest.mark.parametrize("gateway", ["EE/GOV/70000001/gw1", "EE/GOV/7_0.0/g-w.1_x", "FI-TEST/COM/a.b.c/x_"])
def test_the_subject_maps_back_to_the_gateway_id(gateway: str) -> None:
    assert gateway_from_subject(audit_subject(gateway)) == gateway


def test_an_invalid_gateway_id_is_refused() -> None:
    with pytest.raises(InvalidIdentifier):
        audit_subject("EE/GOV/70000001/gw*")
    with pytest.raises(InvalidIdentifier):
        gateway_from_subject("other.subject.EE.GOV.1.gw")
