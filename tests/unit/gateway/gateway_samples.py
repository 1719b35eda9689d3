"""Sample ids shared by the gateway tests (importable by name, unlike conftest)."""

from __future__ import annotations

from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId

PROVIDER = MemberId.parse("EE/GOV/70000001")
CLIENT = MemberId.parse("EE/GOV/70000002")
POPULATION = SubsystemId.parse("EE/GOV/70000001/population")
TAX = SubsystemId.parse("EE/GOV/70000002/tax")
GW1 = GatewayId.parse("EE/GOV/70000001/gw1")
CLIENT_GW = GatewayId.parse("EE/GOV/70000002/gw1")
SERVICE = ServiceId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry")
