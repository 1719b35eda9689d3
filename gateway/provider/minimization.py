"""Data minimization: remove the response fields a permit's ``@fields`` does not grant.

The provider gateway decodes the backend's response with the service's protobuf descriptor
from the registry, clears every set field whose path is not granted (``name``; a nested message
is kept whole when its own path is granted, or descended into when a deeper path is, as in
``address.city``), and re-encodes — before the response is signed, so what the client gets is
what the provider signed. The removed paths go into the signed header and the audit record.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from crossway.core.errors import UpstreamFailed
from registry.configuration import ServiceView

__all__ = ["ResponseMinimizer", "strip_fields"]


class ResponseMinimizer:
    def __init__(self) -> None:
        # (descriptor set digest key, message type) -> generated class
        self._classes: dict[tuple[int, str], Any] = {}

    def _message_class(self, view: ServiceView, type_name: str) -> Any:
        key = (hash(view.file_descriptor_set), type_name)
        cls = self._classes.get(key)
        if cls is None:
            fds = descriptor_pb2.FileDescriptorSet.FromString(view.file_descriptor_set)
            pool = descriptor_pool.DescriptorPool()
            for file in fds.file:  # a set built with --include_imports lists dependencies first
                pool.Add(file)
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(type_name))
            self._classes[key] = cls
        return cls

    def minimize(
        self, view: ServiceView, method: str, body: bytes, granted: frozenset[str]
    ) -> tuple[bytes, tuple[str, ...]]:
        """``body`` without the fields not granted, and the paths removed (sorted)."""
        shape = view.methods[method]
        message = self._message_class(view, shape.output_type)()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            # Fail closed: a response we cannot read is not passed on unminimized.
            raise UpstreamFailed(f"the backend's {method} response does not decode as {shape.output_type}") from exc
        removed = strip_fields(message, granted)
        return message.SerializeToString(), removed


def strip_fields(message: Any, granted: frozenset[str]) -> tuple[str, ...]:
    """Clear, in place, every set field of a parsed message not granted; the paths removed (sorted).
    Used for responses here and for topic events per subscriber (``gateway.topics``)."""
    removed: list[str] = []
    _strip(message, "", granted, removed)
    return tuple(sorted(removed))


def _strip(message: Any, prefix: str, granted: frozenset[str], removed: list[str]) -> None:
    for field, value in message.ListFields():
        path = prefix + field.name
        if path in granted:
            continue
        deeper = any(g.startswith(path + ".") for g in granted)
        if deeper and field.type == FieldDescriptor.TYPE_MESSAGE and not _is_repeated(field):
            _strip(value, path + ".", granted, removed)
            continue
        message.ClearField(field.name)
        removed.append(path)


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 5 has ``is_repeated``; older releases only ``label``.
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED)
