"""Core types: identifiers, the error tree, the clock. Imports nothing else of Crossway's."""

from crossway.core.clock import Clock, ManualClock, SystemClock
from crossway.core.errors import CrosswayError, Hop
from crossway.core.ids import GatewayId, MemberId, MethodId, ServiceId, SubsystemId

__all__ = [
    "Clock",
    "CrosswayError",
    "GatewayId",
    "Hop",
    "ManualClock",
    "MemberId",
    "MethodId",
    "ServiceId",
    "SubsystemId",
    "SystemClock",
]
