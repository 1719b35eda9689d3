"""The sample population-register backend: an ordinary gRPC service that knows nothing of Crossway.

Used by the demo federation, the tests and the benchmark. With ``calls_log`` set it appends one
JSON line per call (method, the ``crossway-*`` metadata and ``traceparent`` it received), so
tests can see what the provider gateway passed on — never the payload.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

__all__ = ["PEOPLE", "PopulationService", "serve_population"]

PEOPLE: dict[str, pb.Person] = {
    p.national_id: p
    for p in (
        pb.Person(
            national_id="38001010001",
            given_name="Mari",
            family_name="Tamm",
            address="Narva mnt 5, Tallinn",
            date_of_birth="1980-01-01",
            health_notes="asthma",
        ),
        pb.Person(
            national_id="39002020002",
            given_name="Jaan",
            family_name="Tamm",
            address="Riia 12, Tartu",
            date_of_birth="1990-02-02",
            health_notes="",
        ),
        pb.Person(
            national_id="48503030003",
            given_name="Liis",
            family_name="Kask",
            address="Pikk 1, Pärnu",
            date_of_birth="1985-03-03",
            health_notes="diabetes",
        ),
    )
}


class PopulationService(pb_grpc.PersonRegistryServicer):
    def __init__(self, calls_log: Path | None = None) -> None:
        self._log = calls_log.open("a", encoding="utf-8") if calls_log else None

    def _record(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self._log is None:
            return
        md = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        seen = {
            k: md[k] for k in ("traceparent", "crossway-client", "crossway-message-id", "crossway-purpose") if k in md
        }
        self._log.write(json.dumps({"method": method, **seen}) + "\n")
        self._log.flush()

    async def GetPerson(self, request: pb.GetPersonRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.Person:
        self._record("GetPerson", context)
        if request.national_id.startswith("slow-"):
            await asyncio.sleep(int(request.national_id[5:]) / 1000)
        person = PEOPLE.get(request.national_id)
        if person is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no person with national id {request.national_id}")
        return person

    async def ListPeople(
        self, request: pb.ListPeopleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.Person]:
        self._record("ListPeople", context)
        sent = 0
        for person in PEOPLE.values():
            if request.family_name and person.family_name != request.family_name:
                continue
            if request.limit and sent >= request.limit:
                break
            sent += 1
            yield person

    async def ImportPeople(
        self, request_iterator: AsyncIterator[pb.Person], context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ImportSummary:
        self._record("ImportPeople", context)
        ids = [person.national_id async for person in request_iterator]
        return pb.ImportSummary(received=len(ids), national_ids=ids)

    async def LookupPeople(
        self, request_iterator: AsyncIterator[pb.GetPersonRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.Person]:
        self._record("LookupPeople", context)
        async for request in request_iterator:
            yield PEOPLE.get(request.national_id, pb.Person(national_id=request.national_id))

    async def Export(
        self, request: pb.ExportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.Chunk]:
        self._record("Export", context)
        chunk = max(1, min(request.chunk_size or 65536, 4 * 1024 * 1024))
        block = bytes(range(256)) * (chunk // 256 + 1)
        remaining = request.total_bytes
        while remaining > 0:
            n = min(chunk, remaining)
            remaining -= n
            yield pb.Chunk(data=block[:n])

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.EchoResponse:
        return pb.EchoResponse(payload=request.payload)


async def serve_population(listen: str = "127.0.0.1:0", calls_log: Path | None = None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(
        options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    )
    pb_grpc.add_PersonRegistryServicer_to_server(PopulationService(calls_log), server)
    port = server.add_insecure_port(listen)
    await server.start()
    return server, port
