"""The SAP-backed agency of the demo federation: a business register (EE/GOV/70000003).

Its gateway reaches an SAP system (in tests and the demo: a SAP CAP server, ``sapcap``) through
the SAP OData V2 adapter; this module holds its identifiers, the descriptor the registry
publishes, its access policy and the ``[[services]]`` entries of its gateway configuration —
the reference example of mapping a gRPC service onto OData operations.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, timestamp_pb2

from crossway.core.ids import MemberId, ServiceId, SubsystemId
from protos.demo.business.v1 import business_pb2

__all__ = [
    "ARCHIVE_SERVICE",
    "BUSINESS",
    "BUSINESS_POLICY",
    "BUSINESS_SERVICE",
    "business_descriptor_set",
    "business_services_toml",
]

BUSINESS = MemberId("EE", "GOV", "70000003")
BUSINESS_SERVICE = ServiceId(SubsystemId(BUSINESS, "business"), "business.v1.BusinessRegister")
# The same service from a second subsystem whose SAP system is switched off: shows what a caller
# sees when a backend is down (the caller picks it with `crossway-service`).
ARCHIVE_SERVICE = ServiceId(SubsystemId(BUSINESS, "archive"), "business.v1.BusinessRegister")

BUSINESS_POLICY = """\
// Who may use the business register (provider EE/GOV/70000003), from either subsystem.
@id("tax-uses-business-register")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"business.v1.BusinessRegister/*",
  resource == Crossway::Service::"EE/GOV/70000003/business/business.v1.BusinessRegister"
);

@id("tax-uses-business-archive")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"business.v1.BusinessRegister/*",
  resource == Crossway::Service::"EE/GOV/70000003/archive/business.v1.BusinessRegister"
);
"""

# gRPC method → OData operation. `properties` names the OData properties that PascalCase of
# the proto field does not give (SAP writes keys as "ID").
_SAP_TABLE = """\
[services.sap]
sap_client = "100"
properties = {{ id = "ID" }}

[services.sap.methods.GetCompany]
operation = "read"
entity_set = "Companies"

[services.sap.methods.ListCompanies]
operation = "query"
entity_set = "Companies"
filter = ["city", "status"]
response_field = "companies"
page_size = 20

[services.sap.methods.CreateCompany]
operation = "create"
entity_set = "Companies"
request_field = "company"

[services.sap.methods.UpdateCompany]
operation = "update"
entity_set = "Companies"
request_field = "company"

[services.sap.methods.DeleteCompany]
operation = "delete"
entity_set = "Companies"

[services.sap.methods.RegisterCompanies]
operation = "batch_create"
entity_set = "Companies"
request_field = "companies"
response_field = "companies"

[services.sap.methods.GetTotalShareCapital]
operation = "function"
function = "TotalShareCapital"
response_field = "total"
"""


def business_descriptor_set() -> bytes:
    """The FileDescriptorSet of the service with its import (what `protoc --include_imports` writes)."""
    fds = descriptor_pb2.FileDescriptorSet()
    timestamp_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    business_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    return fds.SerializeToString()


def business_services_toml(service_url: str, dead_url: str, timeout_s: float = 10.0) -> str:
    """The business gateway's [[services]]: the live SAP system, and the archive whose is down."""
    out = []
    for service, url in ((BUSINESS_SERVICE, service_url), (ARCHIVE_SERVICE, dead_url)):
        out.append(
            f'\n[[services]]\nid = "{service}"\nadapter = "sap_odata"\naddress = "{url}"\ntimeout_s = {timeout_s}\n\n'
            + _SAP_TABLE.format()
        )
    return "".join(out)
