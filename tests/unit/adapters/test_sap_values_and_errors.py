"""Edm values both ways, and SAP error payloads read for the message a person needs."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from adapters.sap.errors import sap_message
from adapters.sap.values import from_odata, to_odata
from crossway.core.errors import UpstreamFailed


def test_decimals_stay_exact_strings_both_ways() -> None:
    assert to_odata("Edm.Decimal", "2500.10", "share_capital") == "2500.10"
    assert from_odata("Edm.Decimal", "0.30") == "0.30"
    assert to_odata("Edm.Decimal", 0.1 + 0.2, "x") != "0.3"  # floats are the caller's problem, not ours
    with pytest.raises(UpstreamFailed) as raised:
        to_odata("Edm.Decimal", "12,5", "share_capital")
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT and "share_capital" in raised.value.message


def test_datetimes_become_utc_and_come_back_as_rfc3339() -> None:
    moment = to_odata("Edm.DateTimeOffset", "2024-02-29T14:30:00+02:00", "registered_at")
    assert moment == dt.datetime(2024, 2, 29, 12, 30, tzinfo=dt.UTC)
    assert from_odata("Edm.DateTime", dt.datetime(2024, 2, 29, 12, 30)) == "2024-02-29T12:30:00Z"
    assert from_odata("Edm.DateTimeOffset", moment.replace(microsecond=5)) == "2024-02-29T12:30:00.000005Z"


def test_guids_are_validated_and_normalised() -> None:
    assert to_odata("Edm.Guid", "0F8FAD5B-D9CB-469F-A165-70867728950E", "id") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    with pytest.raises(UpstreamFailed):
        to_odata("Edm.Guid", "not-a-guid", "id")


def test_int64_from_proto_json_strings() -> None:
    assert to_odata("Edm.Int64", "9007199254740993", "n") == 9007199254740993


def test_the_specific_details_win_over_sap_s_generic_multiple_errors_message() -> None:
    payload = (
        b'{"error":{"code":"MULTIPLE_ERRORS","message":{"lang":"en","value":"Multiple errors occurred, see details."},'
        b'"innererror":{"errordetails":[{"code":"400","message":"Share capital too low","target":"ShareCapital"},'
        b'{"code":"400","message":{"value":"Registry code must have 8 digits"}}]}}}'
    )
    assert sap_message(400, payload) == "Share capital too low; Registry code must have 8 digits"


def test_an_xml_error_payload_is_read_too() -> None:
    payload = (
        b'<?xml version="1.0"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
        b'<code>ZBP/001</code><message xml:lang="en">Business partner 42 does not exist</message></error>'
    )
    assert sap_message(404, payload) == "Business partner 42 does not exist"
    assert sap_message(500, b"") == "SAP answered HTTP 500"
