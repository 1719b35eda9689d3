"""The client side of an exchange (gateway A): authenticate the caller, route, sign, send,
verify the answer. Never imports :mod:`gateway.provider`."""

from gateway.client.callers import CallerAuthenticator, pem_sha256
from gateway.client.metadata import metadata_problem
from gateway.client.metaservices import MetaServices
from gateway.client.pipeline import ClientPipeline, OutgoingCall
from gateway.client.reflection import REFLECTION_PREFIXES, Reflection
from gateway.client.routing import Route, Router

__all__ = [
    "CallerAuthenticator",
    "ClientPipeline",
    "MetaServices",
    "OutgoingCall",
    "REFLECTION_PREFIXES",
    "Reflection",
    "Route",
    "Router",
    "metadata_problem",
    "pem_sha256",
]
