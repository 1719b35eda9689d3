"""What both halves of the gateway share: the configuration file, the per-gateway context,
the exchange recorder (one side of one exchange → its audit record) and the metaservice names."""

from gateway.shared.config import GatewayConfig, Limits
from gateway.shared.context import GatewayContext

__all__ = ["GatewayConfig", "GatewayContext", "Limits"]
