"""The provider side of an exchange (gateway B): verify the peer and the message, decide, call
the adapter, sign the answer. Never imports :mod:`gateway.client`."""

from gateway.provider.authorization import PolicyManager
from gateway.provider.minimization import strip_fields
from gateway.provider.pipeline import ProviderPipeline
from gateway.provider.quotas import QuotaLimiter, Quotas, SharedQuotaLimiter

__all__ = ["PolicyManager", "ProviderPipeline", "QuotaLimiter", "Quotas", "SharedQuotaLimiter", "strip_fields"]
