"""The central registry: members, services, the CA, and the signed configuration gateways trust.

Gateways use :func:`verify_configuration`, :class:`VerifiedConfiguration` and a
:class:`ConfigurationSource`; the registry operator uses :class:`RegistryAuthority` (or the CLI).
"""

from registry.anchor import Anchor, load_anchor
from registry.authority import RegistryAuthority
from registry.changes import (
    REGISTRY_LOG_CERTIFICATE,
    RegistryChange,
    read_changes,
    registry_log_id,
    registry_log_key_id,
    verify_changes,
)
from registry.configuration import (
    GatewayView,
    MailboxView,
    MemberView,
    MethodShape,
    ServiceView,
    VerifiedConfiguration,
    describe_service,
    verify_configuration,
)
from registry.mailboxes import DOCUMENT_TYPE, AcceptanceMode
from registry.publisher import ConfigurationPublisher
from registry.server import RegistryServer
from registry.source import (
    KV_BUCKET,
    KV_KEY,
    ConfigurationListener,
    ConfigurationSource,
    FileConfigurationSource,
    NatsConfigurationSource,
    StaticConfigurationSource,
)
from registry.topics import TopicId, TopicView

__all__ = [
    "DOCUMENT_TYPE",
    "AcceptanceMode",
    "REGISTRY_LOG_CERTIFICATE",
    "KV_BUCKET",
    "KV_KEY",
    "Anchor",
    "ConfigurationListener",
    "ConfigurationPublisher",
    "ConfigurationSource",
    "FileConfigurationSource",
    "GatewayView",
    "MailboxView",
    "MemberView",
    "MethodShape",
    "NatsConfigurationSource",
    "RegistryAuthority",
    "RegistryChange",
    "RegistryServer",
    "ServiceView",
    "StaticConfigurationSource",
    "TopicId",
    "TopicView",
    "VerifiedConfiguration",
    "describe_service",
    "load_anchor",
    "read_changes",
    "registry_log_id",
    "registry_log_key_id",
    "verify_configuration",
    "verify_changes",
]
