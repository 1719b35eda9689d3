"""Fixtures for the policy tests: a small provider with two services, and request builders."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from crossway.core.ids import MethodId, SubsystemId
from policies import AccessRequest, CedarDecisionPoint, PolicyBundle

POPULATION = "EE/GOV/70000002/population/population.v1.PersonRegistry"
VEHICLES = "EE/GOV/70000002/vehicles/vehicles.v1.Registry"
METHODS = (
    MethodId.parse(f"{POPULATION}/GetPerson"),
    MethodId.parse(f"{POPULATION}/ExportAll"),
    MethodId.parse(f"{VEHICLES}/GetVehicle"),
)
GET_PERSON, EXPORT_ALL, GET_VEHICLE = METHODS

BundleFactory = Callable[..., PolicyBundle]
RequestFactory = Callable[..., AccessRequest]


@pytest.fixture
def methods() -> tuple[MethodId, ...]:
    return METHODS


@pytest.fixture
def make_bundle() -> BundleFactory:
    def make(files: Mapping[str, str] | str, *, version: str = "test", sliced: bool = True) -> PolicyBundle:
        texts = {"access.cedar": files} if isinstance(files, str) else dict(files)
        return PolicyBundle.from_texts(texts, METHODS, version=version, sliced=sliced)

    return make


@pytest.fixture
def make_point(make_bundle: BundleFactory) -> Callable[..., CedarDecisionPoint]:
    def make(files: Mapping[str, str] | str, **kwargs: object) -> CedarDecisionPoint:
        return CedarDecisionPoint(make_bundle(files, **kwargs))

    return make


@pytest.fixture
def request_for() -> RequestFactory:
    def make(
        client: str = "EE/GOV/70000001/tax",
        method: MethodId = GET_PERSON,
        *,
        groups: tuple[str, ...] = (),
        **fields: object,
    ) -> AccessRequest:
        return AccessRequest(SubsystemId.parse(client), frozenset(groups), method, **fields)  # type: ignore[arg-type]

    return make
