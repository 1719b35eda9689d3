"""The web console in a real headless Chromium, against the demo federation ``make run`` starts.

Real everything: NATS, the registry and its cosigner, the gateways with admin ports, ``crossway
audit serve`` recording reads, ``crossway console`` with its demo identity provider — as
processes, on loopback. Each flow signs in through the OIDC redirects like a person, clicks
through the pages, checks the browser log for CSP violations and script errors, and saves a
screenshot of every page (see tests/integration/browser.py for where they go).

Selenium blocks, so each flow runs in a worker thread while the event loop keeps reading the
processes' output.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from crossway.demo.console import ConsoleFederation, ConsoleStack
from crossway.demo.scenario import run_scenario
from tests.integration.browser import Browser, require_browser, screenshots_dir, start_driver

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAX = "EE/GOV/70000001/tax"
GET_PERSON = "EE/GOV/70000002/population/population.v1.PersonRegistry/GetPerson"
FORBID_MARKETING = """\
// No marketing use of the population register, whoever asks.
@id("no-marketing")
forbid (principal, action, resource)
when { context.purpose == "marketing" };
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleStack]:
    require_browser()  # before minutes of set-up: fail (CI) or skip (elsewhere) at once
    work = tmp_path_factory.mktemp("console")
    async with ConsoleFederation(work / "fed") as fed:
        result = await run_scenario(fed, lambda line: None)
        assert result.ok, result.failures
        async with ConsoleStack(fed, work / "console") as console:
            yield console


@pytest.fixture(scope="module")
def browser(stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_driver(downloads)
    try:
        yield Browser(driver, stack.url, screenshots_dir(tmp_path_factory), downloads)
    finally:
        driver.quit()


def _no_severe(b: Browser, where: str) -> None:
    severe = b.severe()
    assert severe == [], f"{where}: {severe}"


# -- auditors ------------------------------------------------------------------------------------------


def _auditor_flow(b: Browser, anchor: Path) -> None:
    b.driver.delete_all_cookies()
    b.get("/signin")
    b.shot("01-signin")
    b.click("#signin")
    b.find("#as-auditor")
    b.shot("02-demo-identity-provider")
    b.click("#as-auditor")
    b.until_path("/audit")
    assert b.text("#user-roles") == "auditor"
    assert [a.text for a in b.all("header nav a")] == ["Audit trail", "Policies", "Gateways"]
    b.htmx_ready()
    _no_severe(b, "audit search")
    # Search with the CLI's filters; htmx swaps the results in.
    b.fill("#f-client", TAX)
    b.fill("#f-method", GET_PERSON)
    b.click("#search-button")
    b.wait.until(lambda d: "client=EE" in d.current_url)  # hx-push-url: the search is a link
    rows = b.all("#records tbody tr")
    assert rows and all(TAX in r.text for r in rows)
    b.shot("03-audit-search-results")
    _no_severe(b, "audit results")
    # One exchange, both sides.
    b.click("#records tbody tr a.mid")
    b.until_path("/audit/exchange")
    message_id = b.text("#message-id")
    assert "Both sides agree" in b.text("#agreement")
    assert b.text("#policy-ids") == "tax-uses-population-register"
    assert re.fullmatch(r"[0-9a-f]{32}", b.text("#trace-id"))
    proofs = b.text("#verification")
    assert proofs.count("verified against checkpoint") == 2 and "cosigned by crossway.registry/EE" in proofs
    b.shot("04-audit-exchange")
    _no_severe(b, "exchange page")
    # Evidence: downloaded by the browser, verified offline by the CLI.
    before = {p.name for p in b.downloads.iterdir()}
    b.click("#download-evidence")
    bundle = b.download(before)
    verified = subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", "verify-evidence", str(bundle), "--anchor", str(anchor)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"evidence intact: message {message_id}" in verified.stdout
    # The auditor's own reads are in the audit log: the evidence taken, with the bundle's digest.
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    deadline = time.monotonic() + 20
    while True:
        b.get("/audit?client=auditor%40demo.crossway&method=Evidence")
        if b.all("#records tbody tr") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    b.shot("05-audit-reads-recorded")
    b.click("#records tbody tr a.mid")
    b.until_path("/audit/exchange")
    record = b.text("#sides")
    assert "auditor" in record and digest in record and message_id in record
    assert digest in b.text("#auditor-read") and "called Evidence for" in b.text("#auditor-read")
    b.shot("06-audit-read-record")
    b.sign_out()


async def test_an_auditor_signs_in_searches_opens_an_exchange_and_takes_evidence_the_cli_verifies(
    stack: ConsoleStack, browser: Browser
) -> None:
    await asyncio.to_thread(_auditor_flow, browser, stack.fed.workdir / "registry" / "anchor.json")


# -- policy admins -------------------------------------------------------------------------------------


def _ask(b: Browser, purpose: str) -> str:
    b.fill("#q-client", TAX)
    b.fill("#q-method", GET_PERSON)
    b.fill("#q-purpose", purpose)
    previous = b.all("#test-answer")
    b.click("#ask")
    if previous:  # htmx swaps the answer in: the old one leaves the page
        b.wait.until(lambda d: _stale(previous[0]))
    return b.text("#test-answer")


def _stale(element: object) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_displayed()  # type: ignore[attr-defined]
    except StaleElementReferenceException:
        return True
    return False


def _policy_admin_flow(b: Browser, tmp: Path) -> None:
    b.sign_in("policy-admin")
    b.until_path("/policies")
    assert b.text("#gateway-name") == "EE/GOV/70000002/gw1"
    assert b.text("#current-version") == "v0"
    b.htmx_ready()
    answer = _ask(b, "marketing")
    assert answer.startswith("ALLOW") and "tax-uses-population-register" in answer
    b.shot("10-policies")
    _no_severe(b, "policies")
    # Upload a file with a typo: refused before anything is applied, with file:line as the CLI says it.
    b.click("#propose")
    b.until_path("/policies/change")
    bad, good = tmp / "bad" / "no-marketing.cedar", tmp / "good" / "no-marketing.cedar"
    for path, text in ((bad, FORBID_MARKETING.replace("context.purpose", "context.purpse")), (good, FORBID_MARKETING)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    b.find("#upload").send_keys(str(bad))
    b.fill("#summary", "no marketing use")
    b.click("#validate")
    error = b.text(".error")
    assert "error[policy.invalid]" in error and "no-marketing.cedar:4:" in error and "purpse" in error
    b.shot("11-policy-change-invalid")
    # The form comes back with status 400, which the browser logs; nothing else may be logged.
    assert [e["source"] for e in b.severe()] == ["network"]
    # The corrected file: validated, diffed, confirmed, applied.
    b.find("#upload").send_keys(str(good))
    b.click("#validate")
    b.find("#valid")
    assert "+forbid (principal, action, resource)" in b.text("#diff")
    b.shot("12-policy-confirm")
    _no_severe(b, "confirm")
    b.click("#confirm")
    b.until_text("#applied", "Applied: version 1 is in force")
    row = b.text("#v1")
    assert "no marketing use" in row and "policy-admin@demo.crossway" in row
    b.htmx_ready()
    answer = _ask(b, "marketing")
    assert answer.startswith("DENY") and "forbidden by no-marketing" in answer
    b.shot("13-policies-applied")
    # The diff of v1 from the history.
    b.click("#v1 a[href*='/policies/diff']")
    assert '+@id("no-marketing")' in b.text("#diff")
    b.shot("14-policy-diff")
    b.driver.back()
    # Roll back to v0, confirmed, as the next version.
    b.click("#v0 a.rollback")
    b.until_path("/policies/rollback")
    assert "-forbid (principal, action, resource)" in b.text("#diff")
    b.shot("15-policy-rollback-confirm")
    b.click("#confirm")
    b.until_text("#applied", "Applied: version 2 is in force")
    assert "rollback to v0" in b.text("#v2")
    b.htmx_ready()
    assert _ask(b, "marketing").startswith("ALLOW")
    b.shot("16-policies-rolled-back")
    _no_severe(b, "rolled back")
    b.sign_out()


async def test_a_policy_admin_asks_a_question_applies_a_change_sees_it_in_history_and_rolls_back(
    stack: ConsoleStack, browser: Browser, tmp_path: Path
) -> None:
    await asyncio.to_thread(_policy_admin_flow, browser, tmp_path)


# -- observers -----------------------------------------------------------------------------------------


def _observer_flow(b: Browser) -> None:
    b.sign_in("observer")
    b.until_path("/policies")
    version = b.text("#current-version")
    # The UI hides what the role cannot do...
    assert b.all("#propose") == [] and b.all("a.rollback") == []
    assert [a.text for a in b.all("header nav a")] == ["Policies", "Gateways"]
    b.shot("20-policies-observer")
    # ...and the APIs refuse it anyway: a forged rollback from this very browser, with a valid
    # session and CSRF token, reaches the gateway, which says no.
    b.driver.execute_script(
        """
        const form = document.createElement("form");
        form.method = "post"; form.action = "/policies/rollback";
        const fields = {csrf_token: document.querySelector('input[name="csrf_token"]').value,
                        gateway: "EE/GOV/70000002/gw1", target: "0", base: arguments[0]};
        for (const [name, value] of Object.entries(fields)) {
          const input = document.createElement("input");
          input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
        """,
        version.removeprefix("v"),
    )
    b.until_text(".error", "error[admin.forbidden]")
    assert "observer@demo.crossway may not apply policies" in b.text(".error")
    b.shot("21-forged-apply-refused")
    b.severe()  # the 403 of the document itself is logged; nothing else should be
    b.get("/policies")
    assert b.text("#current-version") == version
    # The audit trail is not theirs: the audit API refuses the observer's token.
    b.get("/audit")
    assert "error[audit.forbidden]" in b.text(".error")
    b.severe()
    # Operators: every gateway's status.
    b.get("/status")
    b.until_text("#overall-1", "SERVING")
    cards = b.all("section.gateway")
    assert len(cards) == 2  # the tax board and the population register (no SAP system in the tests)
    assert all("connected" in c.text and "SERVING" in c.text for c in cards)
    assert "Registry configuration" in cards[0].text and "Checkpoint lag" in cards[0].text
    b.shot("22-gateways-status")
    _no_severe(b, "status")
    b.sign_out()


async def test_an_observer_has_no_apply_button_and_the_gateway_refuses_a_forged_apply(
    stack: ConsoleStack, browser: Browser
) -> None:
    await asyncio.to_thread(_observer_flow, browser)


# -- the console's own defences ------------------------------------------------------------------------


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site: a page whose form posts to the console as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        page = f"""<!doctype html><html><body>
<form id="f" method="post" action="{self.target}/policies/rollback">
<input name="csrf_token" value="guessed"><input name="gateway" value="EE/GOV/70000002/gw1">
<input name="target" value="0"><input name="base" value="2"></form>
<script>document.getElementById("f").submit()</script></body></html>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args: object) -> None:
        return None


def _cross_site_flow(b: Browser, stack: ConsoleStack) -> None:
    b.sign_in("policy-admin")
    version = b.text("#current-version")
    _Attacker.target = stack.url
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        # Same host, other port (same-site, cross-origin), and another host name (cross-site).
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            b.driver.get(origin + "/")
            b.wait.until(lambda d: d.current_url.startswith(stack.url))
            body = b.text("body")
            assert body.startswith("403 Forbidden") and ("cross-origin" in body or "cross-site" in body), body
        b.shot("30-cross-site-post-refused")
        b.severe()
    finally:
        server.shutdown()
    b.get("/policies")
    assert b.text("#current-version") == version  # nothing was applied
    # Same origin, signed in, but no CSRF token: refused too.
    cookies = b.cookies()
    response = httpx.post(
        stack.url + "/policies/rollback",
        data={"gateway": "EE/GOV/70000002/gw1", "target": "0", "base": "2"},
        cookies=cookies,
        headers={"Origin": stack.url},
    )
    assert response.status_code == 403 and "CSRF" in response.text
    b.sign_out()


async def test_a_cross_site_form_post_is_refused_and_so_is_one_without_the_csrf_token(
    stack: ConsoleStack, browser: Browser
) -> None:
    await asyncio.to_thread(_cross_site_flow, browser, stack)


_INLINE = (
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"\shx-on", re.I), "an hx-on attribute (needs eval)"),
)


def _csp_flow(b: Browser, stack: ConsoleStack) -> list[str]:
    pages = {
        "auditor": ["/audit", "/audit?decision=deny", "/policies", "/status"],
        "policy-admin": ["/policies", "/policies/change", "/policies/version?number=0", "/policies/diff?from=0&to=1"],
    }
    checked = []
    with httpx.Client(base_url=stack.url) as anonymous:
        for path in ("/signin", "/static/console.css", "/static/htmx.min.js", "/favicon.ico", "/nope"):
            response = anonymous.get(path)
            assert response.headers["content-security-policy"].startswith("default-src 'self'"), path
            checked.append(path)
    for role, paths in pages.items():
        b.sign_in(role)
        with httpx.Client(base_url=stack.url, cookies=b.cookies()) as client:
            exchange = (
                re.search(r'href="(/audit/exchange\?id=[^"]+)"', client.get("/audit").text)
                if role == "auditor"
                else None
            )
            for path in paths + ([exchange.group(1).replace("&amp;", "&")] if exchange else []):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                headers = response.headers
                assert headers["content-security-policy"].startswith("default-src 'self'")
                assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "same-origin"
                assert headers["cache-control"] == "no-store"
                for pattern, what in _INLINE:
                    match = pattern.search(response.text)
                    assert match is None, f"{path} has {what}: {match.group(0) if match else ''}"
                b.get(path)
                b.find("footer")
                _no_severe(b, path)
                checked.append(path)
        b.sign_out()
    return checked


async def test_every_page_has_the_csp_header_and_nothing_inline_and_the_browser_logs_no_error(
    stack: ConsoleStack, browser: Browser
) -> None:
    checked = await asyncio.to_thread(_csp_flow, browser, stack)
    assert len(checked) >= 14


# -- what the auditor sees when the index was tampered with ----------------------------------------------


def _tamper(index: Path) -> str:
    with sqlite3.connect(index) as db:
        message_id, gateway, leaf, body = db.execute(
            "SELECT message_id, gateway, leaf_index, body FROM records WHERE side = 'provider' AND decision = 'allow' "
            "ORDER BY request_in_ms DESC LIMIT 1"
        ).fetchone()
        altered = body.replace('"purpose":"tax-assessment"', '"purpose":"curiosity"')
        assert altered != body
        db.execute("UPDATE records SET body = ? WHERE gateway = ? AND leaf_index = ?", (altered, gateway, leaf))
    return str(message_id)


def _tampered_flow(b: Browser, message_id: str) -> None:
    b.sign_in("auditor")
    b.get(f"/audit/exchange?id={message_id}")
    assert "disagree on 1 field(s): purpose" in b.text("#disagreement-summary")
    flagged = b.all("#sides tr.disagree")
    assert len(flagged) == 1 and flagged[0].text.startswith("purpose")
    assert "altered" in b.text("#verification")
    b.shot("40-audit-exchange-tampered")
    _no_severe(b, "tampered exchange")
    b.sign_out()


async def test_a_record_altered_in_the_index_shows_as_a_disagreement_and_fails_its_proof(
    stack: ConsoleStack, browser: Browser
) -> None:
    message_id = _tamper(stack.index)
    await asyncio.to_thread(_tampered_flow, browser, message_id)
