"""Fixtures for registry unit tests: a populated registry in tmp_path on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_samples import CLIENT, GW1, POPULATION, PROVIDER, SERVICE, TAX, person_registry_descriptor_set

from crossway.core.clock import ManualClock
from registry import RegistryAuthority


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def authority(tmp_path: Path, clock: ManualClock) -> Iterator[RegistryAuthority]:
    auth = RegistryAuthority.init(tmp_path / "registry", "EE", clock=clock)
    auth.add_member(PROVIDER, "Population Register")
    auth.add_member(CLIENT, "Tax Board")
    auth.add_subsystem(POPULATION)
    auth.add_subsystem(TAX)
    auth.add_gateway(GW1, "127.0.0.1:7443")
    auth.add_service(SERVICE, person_registry_descriptor_set(), require_encryption=True)
    auth.add_group("EE/tax-readers", [TAX])
    yield auth
    auth.close()
