"""AuditRecord: deterministic JSON, strict decoding, no payloads."""

from __future__ import annotations

import dataclasses
import json

import pytest

from audit.trail import AuditRecord, AuditRecordInvalid
from audit.trail.samples import sample_record


def test_a_record_survives_a_json_round_trip_exactly() -> None:
    record = sample_record(7, decision="allow", side="provider", policy_ids=("p1", "p2"), withheld_fields=("ssn",))
    assert AuditRecord.from_json(record.to_json()) == record


def test_the_json_is_compact_with_sorted_keys() -> None:
    data = sample_record(1).to_json()
    doc = json.loads(data)
    assert list(doc) == sorted(doc)
    assert b": " not in data and b", " not in data
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_equal_records_have_equal_bytes() -> None:
    record = sample_record(3)
    assert dataclasses.replace(record).to_json() == record.to_json()


def test_policy_version_defaults_to_empty_and_may_be_absent_in_json() -> None:
    doc = json.loads(sample_record(2).to_json())
    del doc["policy_version"]
    assert AuditRecord.from_json(json.dumps(doc)).policy_version == ""


def test_an_unknown_field_is_rejected_by_name() -> None:
    doc = json.loads(sample_record().to_json())
    doc["payload"] = "secret"
    with pytest.raises(AuditRecordInvalid, match=r"unknown field.*payload"):
        AuditRecord.from_json(json.dumps(doc))


def test_a_missing_field_is_rejected_by_name() -> None:
    doc = json.loads(sample_record().to_json())
    del doc["request_sha256"]
    with pytest.raises(AuditRecordInvalid, match=r"lacks field.*request_sha256"):
        AuditRecord.from_json(json.dumps(doc))


@pytest.mark.parametrize(
    ("field", "value"),
    [("request_in_ms", "1700"), ("request_size", True), ("status", 0), ("policy_ids", "p1"), ("policy_ids", [1])],
)
def test_a_mistyped_field_is_rejected(field: str, value: object) -> None:
    doc = json.loads(sample_record().to_json())
    doc[field] = value
    with pytest.raises(AuditRecordInvalid, match=field):
        AuditRecord.from_json(json.dumps(doc))


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_something_that_is_not_a_json_object_is_rejected(data: bytes) -> None:
    with pytest.raises(AuditRecordInvalid):
        AuditRecord.from_json(data)


def test_an_administrative_event_is_a_record_of_its_own_kind() -> None:
    record = sample_record(side="admin")
    assert AuditRecord.from_json(record.to_json()).side == "admin"


def test_side_and_decision_must_be_known_values() -> None:
    with pytest.raises(AuditRecordInvalid, match="side"):
        sample_record(side="server")
    with pytest.raises(AuditRecordInvalid, match="decision"):
        sample_record(decision="maybe")


def test_a_record_is_frozen() -> None:
    record = sample_record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "INTERNAL"  # type: ignore[misc]


def test_records_without_evidence_keep_their_exact_bytes() -> None:
    # Records written before delivery existed must re-verify: no new key in their JSON.
    data = sample_record(5, side="provider").to_json()
    assert b"evidence" not in data
    assert AuditRecord.from_json(data).to_json() == data


def test_a_delivery_record_carries_its_evidence_and_round_trips() -> None:
    record = dataclasses.replace(sample_record(6), side="delivery", evidence='{"event":"x"}')
    data = record.to_json()
    assert json.loads(data)["evidence"] == '{"event":"x"}'
    assert AuditRecord.from_json(data) == record


def test_an_empty_evidence_field_is_refused_so_no_byte_is_free() -> None:
    doc = json.loads(sample_record().to_json())
    doc["evidence"] = ""
    with pytest.raises(AuditRecordInvalid, match="evidence"):
        AuditRecord.from_json(json.dumps(doc))
