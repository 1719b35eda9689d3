"""The policy admins' pages: the set in force and its history, diffs, access questions, and
changes — upload, validate, diff, confirm, apply — and rollbacks.

A change is never applied from one click: the files are validated by the gateway against the
methods it serves (``validate_only``, errors with file:line as the CLI prints them) and diffed
against the version in force; the admin confirms that diff, and the apply names the version it
was confirmed against (``expected_current``), so a version someone applied meanwhile turns the
confirmation into a conflict instead of being silently overwritten. The gateway checks the
role on every call; these pages only hide what the user's roles cannot do.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.backends import AdminClient, ApiError
from console.sessions import Session
from console.web import POLICY_ADMIN, iso, redirect, render, render_error, signed_in, state

__all__ = ["diff_lines", "routes", "unified_diff"]

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_FILES = 50


def unified_diff(old: Mapping[str, str], new: Mapping[str, str], old_label: str, new_label: str) -> str:
    """Per file, in name order — the same form as the gateway's DiffPolicies and the CLI."""
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, ""), new.get(name, "")
        if a != b:
            out.extend(
                difflib.unified_diff(
                    a.splitlines(keepends=True),
                    b.splitlines(keepends=True),
                    f"{old_label}/{name}" if name in old else "/dev/null",
                    f"{new_label}/{name}" if name in new else "/dev/null",
                )
            )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, text) per line: add, del, hunk, file or context."""
    out = []
    for line in diff.splitlines():
        kind = (
            "file"
            if line.startswith(("+++", "---"))
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else "hunk"
            if line.startswith("@@")
            else "ctx"
        )
        out.append((kind, line))
    return out


def _gateway(request: Request, name: str | None = None) -> AdminClient:
    api = state(request).api()
    wanted = name if name is not None else request.query_params.get("gateway", "")
    if not wanted:
        if not api.gateways:
            raise ApiError("console.no_gateway", "no gateway admin port is configured", "add [[gateways]]")
        return next(iter(api.gateways.values()))
    return api.gateway(wanted)


def _can_apply(session: Session) -> bool:
    return POLICY_ADMIN in session.roles


def _q(gateway: AdminClient, **more: Any) -> str:
    return urlencode({"gateway": gateway.name, **more})


async def overview(request: Request, *, answer: Any = None, question: Mapping[str, str] | None = None) -> Response:
    session = signed_in(request)
    try:
        gateway = _gateway(request)
        history = await gateway.versions(session.bearer)
        number, files = await gateway.files(session.bearer)
    except ApiError as exc:
        return render_error(request, exc, area="policies")
    versions = [
        {
            "number": v.number,
            "when": iso(v.created_at_ms) if v.created_at_ms else "at start (policy directory)",
            "author": v.author or "—",
            "summary": v.summary,
            "rollback_of": v.rollback_of,
            "digest": v.digest[:12],
            "current": v.number == history.current,
        }
        for v in reversed(history.versions)
    ]
    context = {
        "gateways": list(state(request).api().gateways),
        "gateway": gateway.name,
        "q": _q(gateway),
        "current": number,
        "files": sorted(files.items()),
        "versions": versions,
        "can_apply": _can_apply(session),
        "question": question or {},
        "answer": answer,
        "applied": request.query_params.get("applied", ""),
    }
    return render(request, "policies.html", context, area="policies")


async def test_question(request: Request) -> Response:
    session = signed_in(request)
    form = await request.form()
    question = {
        k: str(form.get(k, "")).strip()
        for k in ("gateway", "client", "method", "purpose", "user_id", "claims", "groups")
    }
    claims = dict(line.partition("=")[::2] for line in question["claims"].splitlines() if "=" in line)
    groups = [g.strip() for g in question["groups"].split(",") if g.strip()]
    try:
        gateway = _gateway(request, question["gateway"])
        result = await gateway.test_access(
            session.bearer,
            client=question["client"],
            method=question["method"],
            purpose=question["purpose"],
            user_id=question["user_id"],
            claims={k.strip(): v.strip() for k, v in claims.items()},
            groups=groups,
        )
        answer: Any = result
    except ApiError as exc:
        answer = exc
    if request.headers.get("hx-request"):
        return render(request, "_test_answer.html", {"answer": answer, "question": question}, area="policies")
    return await overview(request, answer=answer, question=question)


async def version_page(request: Request) -> Response:
    session = signed_in(request)
    try:
        gateway = _gateway(request)
        number, files = await gateway.files(session.bearer, int(request.query_params.get("number", "0")))
    except (ApiError, ValueError) as exc:
        return _error(request, exc)
    return render(
        request,
        "policy_version.html",
        {"gateway": gateway.name, "q": _q(gateway), "number": number, "files": sorted(files.items())},
        area="policies",
    )


async def diff_page(request: Request) -> Response:
    session = signed_in(request)
    try:
        gateway = _gateway(request)
        a, b = int(request.query_params.get("from", "0")), int(request.query_params.get("to", "0"))
        _, old = await gateway.files(session.bearer, a)
        _, new = await gateway.files(session.bearer, b)
    except (ApiError, ValueError) as exc:
        return _error(request, exc)
    diff = unified_diff(old, new, f"v{a}", f"v{b}")
    context = {"gateway": gateway.name, "q": _q(gateway), "a": a, "b": b, "lines": diff_lines(diff)}
    return render(request, "policy_diff.html", context, area="policies")


# -- change: upload → validate → diff → confirm → apply ---------------------------------------------


async def _proposal(form: Any) -> tuple[dict[str, str], list[str]]:
    """The proposed file set from the form: edited texts, removals, uploads (which replace)."""
    files: dict[str, str] = {}
    problems: list[str] = []
    for key, value in form.multi_items():
        if key.startswith("text.") and isinstance(value, str):
            name = key[5:]
            if form.get(f"remove.{name}") != "on":
                files[name] = value.replace("\r\n", "\n")
    new_name = str(form.get("new_name", "")).strip()
    if new_name:
        files[new_name] = str(form.get("new_text", "")).replace("\r\n", "\n")
    for upload in form.getlist("upload"):
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read()
            try:
                files[upload.filename.rsplit("/", 1)[-1]] = data.decode("utf-8").replace("\r\n", "\n")
            except UnicodeDecodeError:
                problems.append(f"{upload.filename}: not UTF-8 text")
    for name in files:
        if not _FILE_NAME.fullmatch(name) or not (name.endswith(".cedar") or name == "local-groups.json"):
            problems.append(f"{name}: a policy set holds *.cedar files and local-groups.json only")
    if len(files) > MAX_FILES:
        problems.append(f"at most {MAX_FILES} files")
    return files, problems


async def change_form(request: Request) -> Response:
    session = signed_in(request)
    try:
        gateway = _gateway(request)
        number, files = await gateway.files(session.bearer)
    except ApiError as exc:
        return render_error(request, exc, area="policies")
    context = {"gateway": gateway.name, "q": _q(gateway), "current": number, "files": sorted(files.items())}
    return render(request, "policy_change.html", context, area="policies")


async def change_submit(request: Request) -> Response:
    session = signed_in(request)
    form = await request.form()
    files, problems = await _proposal(form)
    summary = str(form.get("summary", "")).strip()[:200]
    try:
        gateway = _gateway(request, str(form.get("gateway", "")))
        current, _ = await gateway.files(session.bearer)
    except ApiError as exc:
        return render_error(request, exc, area="policies")
    context: dict[str, Any] = {
        "gateway": gateway.name,
        "q": _q(gateway),
        "current": current,
        "files": sorted(files.items()),
        "summary": summary,
    }
    if problems:
        return render(
            request, "policy_change.html", {**context, "problems": problems}, area="policies", status_code=400
        )
    try:
        # Validated by the gateway against the methods it serves, exactly as applying would.
        would = await gateway.apply(session.bearer, files, summary, validate_only=True, expected_current=current)
        diff = await gateway.diff(session.bearer, files)
    except ApiError as exc:
        # policy.invalid names file:line, as the CLI prints it; the admin fixes and submits again
        return render(request, "policy_change.html", {**context, "error": exc}, area="policies", status_code=400)
    draft = secrets.token_urlsafe(16)
    session.drafts.clear()  # one pending change per session is plenty
    session.drafts[draft] = {"gateway": gateway.name, "files": files, "summary": summary, "base": current}
    context.update(
        draft=draft, number=would.number, changed=diff.changed, lines=diff_lines(diff.diff), base=current, kind="apply"
    )
    return render(request, "policy_confirm.html", context, area="policies")


async def apply(request: Request) -> Response:
    session = signed_in(request)
    form = await request.form()
    draft = session.drafts.pop(str(form.get("draft", "")), None)
    if draft is None:
        return render_error(
            request,
            ApiError("console.no_draft", "this change is no longer pending", "upload it again"),
            area="policies",
        )
    try:
        gateway = _gateway(request, draft["gateway"])
        version = await gateway.apply(
            session.bearer, draft["files"], draft["summary"], validate_only=False, expected_current=draft["base"]
        )
    except ApiError as exc:
        return render_error(request, exc, area="policies")
    return redirect(f"/policies?{_q(gateway, applied=version.number)}")


async def rollback_form(request: Request) -> Response:
    session = signed_in(request)
    try:
        gateway = _gateway(request)
        target = int(request.query_params.get("to", ""))
        current, now = await gateway.files(session.bearer)
        _, then = await gateway.files(session.bearer, target)
    except (ApiError, ValueError) as exc:
        return _error(request, exc)
    diff = unified_diff(now, then, f"v{current}", f"v{target}")
    context = {
        "gateway": gateway.name,
        "q": _q(gateway),
        "current": current,
        "base": current,
        "target": target,
        "number": current + 1,
        "changed": bool(diff),
        "lines": diff_lines(diff),
        "kind": "rollback",
        "summary": f"rollback to v{target}",
    }
    return render(request, "policy_confirm.html", context, area="policies")


async def rollback(request: Request) -> Response:
    session = signed_in(request)
    form = await request.form()
    try:
        gateway = _gateway(request, str(form.get("gateway", "")))
        version = await gateway.rollback(
            session.bearer,
            int(str(form.get("target", ""))),
            str(form.get("summary", "")).strip()[:200],
            int(str(form.get("base", ""))),
        )
    except (ApiError, ValueError) as exc:
        return _error(request, exc)
    return redirect(f"/policies?{_q(gateway, applied=version.number)}")


def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return render_error(request, exc, area="policies")
    return render_error(
        request, ApiError("console.bad_request", "a version number is not a number", ""), area="policies"
    )


def routes() -> list[Route]:
    return [
        Route("/policies", overview),
        Route("/policies/test", test_question, methods=["POST"]),
        Route("/policies/version", version_page),
        Route("/policies/diff", diff_page),
        Route("/policies/change", change_form),
        Route("/policies/change", change_submit, methods=["POST"]),
        Route("/policies/apply", apply, methods=["POST"]),
        Route("/policies/rollback", rollback_form),
        Route("/policies/rollback", rollback, methods=["POST"]),
    ]
