"""The auditors' pages: search the exchange log, one exchange with both sides, evidence.

Every read goes to the audit API with the auditor's own token; the audit API records it in the
audit log before it answers (who searched for what, who took which evidence). Search results
page by the API's cursor: each page ends with the token of its last entry, so page 200 of a
10,000-exchange search costs what page 1 costs (bench/console.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.backends import ApiError, Entry, Exchange
from console.web import iso, render, render_error, signed_in, state

__all__ = ["FILTERS", "RECORD_FIELDS", "routes"]

# The filters of `crossway audit query` (form field → AuditFilters field), in its order.
FILTERS = (
    ("since", "since_ms", "From (inclusive)", "2026-11-27T09:00 (UTC) or epoch ms"),
    ("until", "until_ms", "Until (exclusive)", "2026-11-27T18:00 (UTC) or epoch ms"),
    ("client", "client", "Client subsystem", "EE/GOV/70000001/tax"),
    ("service", "service", "Service", "EE/GOV/70000002/population/population.v1.PersonRegistry"),
    ("method", "method", "Method", "GetPerson, or the full method id"),
    ("user", "user_id", "End user", "EE38001010001"),
    ("status", "status", "Status", "OK, PERMISSION_DENIED, …"),
    ("decision", "decision", "Decision", ""),
    ("message_id", "message_id", "Message id", ""),
)
PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE = 50

# A record's fields in reading order (audit.trail.AuditRecord); the exchange page shows them all.
RECORD_FIELDS = (
    "side",
    "gateway",
    "record_id",
    "message_id",
    "client",
    "service",
    "method",
    "user_id",
    "purpose",
    "request_in_ms",
    "request_out_ms",
    "response_in_ms",
    "response_out_ms",
    "request_size",
    "response_size",
    "request_sha256",
    "response_sha256",
    "status",
    "error_code",
    "decision",
    "policy_ids",
    "policy_version",
    "withheld_fields",
    "peer_gateway",
    "trace_id",
    "request_signature",
    "response_signature",
)
_TIMES = frozenset({"request_in_ms", "request_out_ms", "response_in_ms", "response_out_ms"})
# The exchange page's sections, in order; later issues add theirs (delivery timeline, topic matrix).
EXCHANGE_SECTIONS = ("decision", "verification", "sides", "evidence")


class FormProblem(Exception):
    pass


def _time(text: str) -> int:
    """Epoch ms from digits, or ISO 8601 (UTC when no zone is given) — as the CLI reads --since."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise FormProblem(f"time {text!r} is neither epoch ms nor ISO 8601 (e.g. 2026-11-27T12:00)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _filters(params: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(AuditFilters fields, the form's own values to show again)."""
    shown = {name: params.get(name, "").strip() for name, *_ in FILTERS}
    out: dict[str, Any] = {}
    for name, field, *_ in FILTERS:
        value = shown[name]
        if not value:
            continue
        if field.endswith("_ms"):
            out[field] = _time(value)
        elif field == "method" and "/" in value:
            # Records hold the service id and the method's name apart: a full method id is both.
            service, _, method = value.rpartition("/")
            if out.get("service", service) != service:
                raise FormProblem(f"the method {value} is not of the service {out['service']}")
            out["service"], out["method"] = service, method
        elif field == "decision" and value not in ("allow", "deny"):
            raise FormProblem("decision is allow or deny")
        else:
            out[field] = value
    return out, shown


def _row(entry: Entry) -> dict[str, Any]:
    r = entry.record
    return {
        "time": iso(int(r.get("request_in_ms", 0))),
        "side": r.get("side", ""),
        "gateway": entry.gateway,
        "message_id": r.get("message_id", ""),
        "client": r.get("client", ""),
        "method": str(r.get("method", "")).rsplit("/", 1)[-1],
        "user": r.get("user_id", ""),
        "status": r.get("status", ""),
        "decision": r.get("decision", "") or "—",
    }


async def search(request: Request) -> Response:
    session = signed_in(request)
    params = request.query_params
    try:
        filters, shown = _filters(params)
        size = int(params.get("size", DEFAULT_PAGE))
        if size not in PAGE_SIZES:
            raise FormProblem(f"page size is one of {', '.join(map(str, PAGE_SIZES))}")
        page = max(1, int(params.get("page", "1") or 1))
    except (FormProblem, ValueError) as exc:
        return _search_page(request, {"problem": str(exc), "shown": dict(params), "rows": []})
    token = params.get("page_token", "")
    audit = state(request).api().audit
    if audit is None:
        return render_error(request, ApiError("console.no_audit_api", "no audit API is configured", "add [audit]"))
    try:
        # One more than a page: whether a next page exists, without a count over everything.
        entries = await audit.query(session.bearer, filters, size + 1, token)
    except ApiError as exc:
        return render_error(request, exc, area="audit")
    more = len(entries) > size
    entries = entries[:size]
    base = {k: v for k, v in shown.items() if v}
    base["size"] = str(size)
    context = {
        "shown": shown,
        "size": size,
        "rows": [_row(e) for e in entries],
        "first": (page - 1) * size + 1,
        "page": page,
        "next_url": f"/audit?{urlencode({**base, 'page_token': entries[-1].next_page_token, 'page': page + 1})}"
        if more
        else "",
        "first_url": f"/audit?{urlencode(base)}" if page > 1 else "",
    }
    return _search_page(request, context)


def _search_page(request: Request, context: dict[str, Any]) -> Response:
    context = {"filters": FILTERS, "sizes": PAGE_SIZES, "size": DEFAULT_PAGE, **context}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return render(request, "_audit_results.html", context, area="audit")
    return render(request, "audit_search.html", context, area="audit")


def _value(field: str, value: Any) -> str:
    if value is None:
        return ""
    if field in _TIMES and isinstance(value, int):
        return iso(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _sides_table(exchange: Exchange) -> list[dict[str, Any]]:
    client, provider = exchange.sides.get("client"), exchange.sides.get("provider")
    rows = []
    for field in RECORD_FIELDS:
        rows.append(
            {
                "field": field,
                "client": _value(field, client.record.get(field)) if client is not None else "",
                "provider": _value(field, provider.record.get(field)) if provider is not None else "",
                "disagree": field in exchange.disagreements,
            }
        )
    return rows


async def exchange_page(request: Request) -> Response:
    session = signed_in(request)
    message_id = request.query_params.get("id", "").strip()
    audit = state(request).api().audit
    if not message_id or audit is None or not re.fullmatch(r"[\x21-\x7e]{1,256}", message_id):
        return render_error(request, ApiError("audit.not_found", "name a message id", "search, then open a row"))
    try:
        exchange = await audit.exchange(session.bearer, message_id)
    except ApiError as exc:
        return render_error(request, exc, area="audit")
    single = exchange.sides.get("admin") or exchange.sides.get("auditor")
    deciding = exchange.sides.get("provider") or single
    context = {
        "exchange": exchange,
        "sections": EXCHANGE_SECTIONS,
        "single": [(f, _value(f, single.record.get(f))) for f in RECORD_FIELDS] if single is not None else None,
        "rows": _sides_table(exchange),
        "missing": [s for s in ("client", "provider") if s not in exchange.sides] if single is None else [],
        "decision": deciding.record if deciding is not None else {},
        "headline": (exchange.sides.get("client") or deciding or next(iter(exchange.sides.values()))).record,
        "trace_id": next((e.record.get("trace_id") for e in exchange.sides.values() if e.record.get("trace_id")), ""),
        "proofs": exchange.proofs,
        "iso": iso,
    }
    return render(request, "audit_exchange.html", context, area="audit")


async def evidence(request: Request) -> Response:
    """A POST with the CSRF token: taking evidence is recorded in the auditor's name."""
    session = signed_in(request)
    form = await request.form()
    message_id = str(form.get("id", "")).strip()
    audit = state(request).api().audit
    if not message_id or audit is None:
        return render_error(request, ApiError("audit.not_found", "name a message id", "open an exchange first"))
    try:
        bundle = await audit.evidence(session.bearer, message_id)
    except ApiError as exc:
        return render_error(request, exc, area="audit")
    filename = "evidence-" + re.sub(r"[^A-Za-z0-9._-]", "_", message_id) + ".json"
    return Response(
        bundle,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def routes() -> list[Route]:
    return [
        Route("/audit", search),
        Route("/audit/exchange", exchange_page),
        Route("/audit/evidence", evidence, methods=["POST"]),
    ]
