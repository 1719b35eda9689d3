"""Topics in the registry: what the operator registers, what gateways read, what is refused."""

from __future__ import annotations

import pytest
from registry_samples import POPULATION

from crossway.core.clock import ManualClock
from crossway.core.errors import ConfigError
from crossway.demo.members import population_descriptor_set
from registry import RegistryAuthority, TopicId, load_anchor, verify_configuration

TOPIC = f"{POPULATION}/address-changes"


def test_a_topic_is_published_with_its_owner_event_type_and_key_field(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    authority.set_topic(TOPIC, "population.v1.AddressChanged", population_descriptor_set(), "national_id")
    config = verify_configuration(authority.build_configuration(), load_anchor(authority.anchor_path), clock.now_ms())
    view = config.topic(TOPIC)
    assert view is not None and view.event_type == "population.v1.AddressChanged" and view.key_field == "national_id"
    assert view.id.publisher == POPULATION


@pytest.mark.parametrize(
    ("topic", "event_type", "key_field", "message"),
    [
        (f"{POPULATION}/Address_Changes", "population.v1.AddressChanged", "", "is not 1-63"),
        (f"{POPULATION.member}/address-changes", "population.v1.AddressChanged", "", "is not INSTANCE"),
        (TOPIC, "population.v1.Nobody", "", "does not define"),
        (TOPIC, "population.v1.AddressChanged", "no_such_field", "is not a top-level string or integer field"),
    ],
)
def test_a_bad_topic_is_refused_with_a_reason(
    authority: RegistryAuthority, topic: str, event_type: str, key_field: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        authority.set_topic(topic, event_type, population_descriptor_set(), key_field)


def test_a_topic_of_an_unknown_subsystem_is_refused(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError):
        authority.set_topic(
            f"{POPULATION.member}/nobody/changes", "population.v1.AddressChanged", population_descriptor_set(), ""
        )
    assert TopicId.parse(TOPIC).name == "address-changes"
