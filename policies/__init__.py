"""Cedar access policies: the decision point the provider gateway calls on every request.

Deny by default; ``forbid`` beats ``permit``. Principal = the calling subsystem (in its member,
its registry groups and the provider's local groups); action = the gRPC method; resource =
the service; context = purpose, end user and claims, time, client attributes. The types live
in ``crossway.cedarschema``; one action per served method is generated (see ``schema``), so a
policy naming a method the gateway does not serve is rejected at load time. Messages to a
mailbox (registered delivery) are decided by ``MessagePolicies`` with ``messages.cedarschema``.
"""

from __future__ import annotations

from policies.bundle import PolicyBundle, load_policy_dir
from policies.decision import AccessRequest, Claim, Decision
from policies.errors import PolicyInvalid
from policies.formatting import format_policy_dir, format_policy_text
from policies.messages import MessagePolicies, MessageRequest
from policies.obligations import Obligations, Quota
from policies.point import CedarDecisionPoint, DecisionPoint, StaticDecisionPoint
from policies.schema import action_id, schema_text, service_action_group
from policies.topics import TopicPolicies, TopicRequest

__all__ = [
    "AccessRequest",
    "CedarDecisionPoint",
    "Claim",
    "Decision",
    "DecisionPoint",
    "MessagePolicies",
    "MessageRequest",
    "Obligations",
    "PolicyBundle",
    "PolicyInvalid",
    "Quota",
    "StaticDecisionPoint",
    "TopicPolicies",
    "TopicRequest",
    "action_id",
    "format_policy_dir",
    "format_policy_text",
    "load_policy_dir",
    "schema_text",
    "service_action_group",
]
