"""Mailboxes in the registry: what the operator sets, what gateways read, what is refused."""

from __future__ import annotations

import pytest
from registry_samples import POPULATION, TAX, person_registry_descriptor_set

from crossway.core.clock import ManualClock
from crossway.core.errors import ConfigError
from registry import DOCUMENT_TYPE, AcceptanceMode, RegistryAuthority, load_anchor, verify_configuration
from registry.mailboxes import message_types_in


def _config(authority: RegistryAuthority, clock: ManualClock):  # type: ignore[no-untyped-def]
    return verify_configuration(authority.build_configuration(), load_anchor(authority.anchor_path), clock.now_ms())


def test_a_mailbox_is_published_with_its_types_mode_and_encryption(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    authority.set_mailbox(
        POPULATION,
        message_types=["population.v1.Person"],
        file_descriptor_set=person_registry_descriptor_set(),
        document_content_types=["application/pdf", "text/*"],
        require_encryption=True,
        acceptance=AcceptanceMode.ACCEPT_REJECT,
        acceptance_window_ms=60_000,
    )
    box = _config(authority, clock).mailbox(POPULATION)
    assert box is not None
    assert box.message_types == frozenset({"population.v1.Person"})
    assert box.require_encryption and box.acceptance is AcceptanceMode.ACCEPT_REJECT
    assert box.acceptance_window_ms == 60_000
    assert box.accepts("population.v1.Person", "")
    assert box.accepts(DOCUMENT_TYPE, "text/plain") and box.accepts(DOCUMENT_TYPE, "application/pdf")
    assert not box.accepts(DOCUMENT_TYPE, "image/png")
    assert not box.accepts("population.v1.GetPersonRequest", "")
    assert _config(authority, clock).mailbox(TAX) is None


def test_setting_a_mailbox_again_replaces_it(authority: RegistryAuthority, clock: ManualClock) -> None:
    authority.set_mailbox(POPULATION, document_content_types=["application/pdf"])
    authority.set_mailbox(POPULATION, document_content_types=["text/plain"])
    [box] = _config(authority, clock).mailboxes()
    assert box.document_content_types == ("text/plain",) and box.acceptance is AcceptanceMode.HANDOVER


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "accepts nothing"),
        ({"message_types": ["population.v1.Nope"], "file_descriptor_set": b"x"}, "does not define|unusable"),
        ({"document_content_types": ["pdf"]}, "TYPE/SUBTYPE"),
        ({"document_content_types": ["text/plain"], "acceptance": AcceptanceMode.ACCEPT_REJECT}, "window"),
        ({"message_types": [DOCUMENT_TYPE]}, "--document"),
    ],
)
def test_a_mailbox_that_could_never_work_is_refused(
    authority: RegistryAuthority, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        authority.set_mailbox(POPULATION, **kwargs)  # type: ignore[arg-type]


def test_message_types_are_read_from_a_descriptor_set_with_nested_ones() -> None:
    names = message_types_in(person_registry_descriptor_set())
    assert {"population.v1.Person", "population.v1.GetPersonRequest"} <= names
