"""Fixtures for gateway unit tests: a real registry authority in tmp_path on a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_samples import CLIENT, CLIENT_GW, GW1, POPULATION, PROVIDER, SERVICE, TAX

from crossway.core.clock import ManualClock
from crossway.demo.federation import population_descriptor_set
from registry import RegistryAuthority, VerifiedConfiguration, verify_configuration


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def authority(tmp_path: Path, clock: ManualClock) -> Iterator[RegistryAuthority]:
    """Two members; the provider offers population.v1.PersonRegistry through one gateway."""
    auth = RegistryAuthority.init(tmp_path / "reg", "EE", clock=clock)
    auth.add_member(PROVIDER, "Population Register")
    auth.add_member(CLIENT, "Tax Board")
    auth.add_subsystem(POPULATION)
    auth.add_subsystem(TAX)
    auth.add_gateway(GW1, "gw1.population.example:7443")
    auth.add_gateway(CLIENT_GW, "gw1.tax.example:7443")
    auth.add_service(SERVICE, population_descriptor_set())
    yield auth
    auth.close()


@pytest.fixture
def configure(authority: RegistryAuthority, clock: ManualClock) -> Callable[[], VerifiedConfiguration]:
    """Publish the authority's current state and verify it as a gateway would."""

    def build() -> VerifiedConfiguration:
        return verify_configuration(authority.build_configuration(), authority.anchor, clock.now_ms())

    return build
