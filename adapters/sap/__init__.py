"""The SAP OData V2 adapter (pyodata): sessions with CSRF, operations, values, errors."""

from adapters.sap.adapter import SapODataAdapter

__all__ = ["SapODataAdapter"]
