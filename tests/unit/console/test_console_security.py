"""The console's own security, in-process (httpx over ASGI, no socket): sign-in with OIDC and PKCE,
session cookies, CSRF and Origin checks, response headers, nothing inline, the pinned htmx."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from console.app import HTMX_SHA256, create_app
from console.config import load_config
from console.oidc import code_challenge
from crossway.core.errors import ConfigError
from crossway.security.keys import generate_signing_key, save_private_key

URL = "http://127.0.0.1:8600"
TEMPLATES = Path(__file__).resolve().parents[3] / "console" / "templates"


def _config(tmp_path: Path, extra: str = "", public_url: str = "") -> Path:
    save_private_key(tmp_path / "demo-idp.key", generate_signing_key("ES256"))
    path = tmp_path / "console.toml"
    console = f'public_url = "{public_url}"\n' if public_url else ""
    path.write_text(
        f'[console]\nlisten = "127.0.0.1:0"\n{console}\n'
        '[demo_provider]\nkey = "demo-idp.key"\naudiences = ["crossway-admin", "crossway-audit"]\n' + extra
    )
    return path


def _client(tmp_path: Path, public_url: str = "") -> httpx.AsyncClient:
    config = load_config(_config(tmp_path, public_url=public_url), {})
    app = create_app(config, public_url or URL)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=public_url or URL)


async def _sign_in(client: httpx.AsyncClient, user: str = "auditor@demo.crossway") -> httpx.Response:
    login = await client.get("/login?next=/status")
    assert login.status_code == 303
    authorize = await client.get(login.headers["location"])
    form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', authorize.text))
    form["user"] = user
    granted = await client.post("/demo-idp/authorize", data=form, headers={"Origin": URL})
    assert granted.status_code == 303
    return await client.get(granted.headers["location"])


def test_the_pkce_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636, Appendix B.
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


async def test_signing_in_sets_a_strict_httponly_session_and_no_token_reaches_a_page_url_or_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(tmp_path) as client:
        login = await client.get("/login?next=/status")
        query = parse_qs(urlsplit(login.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert query["redirect_uri"] == [f"{URL}/oidc/callback"] and query["state"] and query["nonce"]
        assert (
            "crossway_login=" in login.headers["set-cookie"] and "samesite=lax" in login.headers["set-cookie"].lower()
        )
        client.cookies.clear()
        done = await _sign_in(client)
        assert done.status_code == 200 and 'url=/status"' in done.text  # a page moves on, not a redirect
        cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("crossway_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on loopback (the demo); https makes it Secure
        session = cookie.split(";")[0].split("=", 1)[1]
        page = await client.get("/signin")
        assert page.status_code == 303  # signed in already
    # The access token never left the console: not in a cookie, a page, a redirect or a log line
    # of the console's (the test client's own httpx log shows the URLs it asked for).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("console"))
    tokens = re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", logged + done.text + str(done.headers))
    assert tokens == [] and session not in logged
    assert "code=" not in logged and "state=" not in logged  # the callback's query string is not logged


async def test_a_callback_not_started_here_or_replayed_is_refused(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        login = await client.get("/login")
        authorize = await client.get(login.headers["location"])
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', authorize.text))
        granted = await client.post("/demo-idp/authorize", data={**form, "user": "auditor@demo.crossway"})
        callback = granted.headers["location"]
        forged = await client.get(callback.replace("state=", "state=x"))
        assert forged.status_code == 400 and "not started from this browser" in forged.text
        # The attempt was used up by the forged callback: the real one is refused too (sign in again).
        assert (await client.get(callback)).status_code == 400


async def test_the_demo_provider_refuses_a_wrong_verifier_a_reused_code_and_a_foreign_redirect(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        login = await client.get("/login")
        authorize = await client.get(login.headers["location"])
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', authorize.text))
        granted = await client.post("/demo-idp/authorize", data={**form, "user": "observer@demo.crossway"})
        code = parse_qs(urlsplit(granted.headers["location"]).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": form["redirect_uri"],
            "client_id": form["client_id"],
            "code_verifier": "not-the-verifier-" + "x" * 40,
        }
        wrong = await client.post("/demo-idp/token", data=exchange)
        assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant"}
        again = await client.post("/demo-idp/token", data=exchange)  # a code works once, even after a failure
        assert again.status_code == 400
        foreign = await client.get(login.headers["location"].replace("redirect_uri=http", "redirect_uri=https"))
        assert foreign.status_code == 400 and "redirect_uri is not the registered one" in foreign.text


async def test_a_change_without_the_csrf_token_or_from_another_origin_is_refused(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        await _sign_in(client)
        page = await client.get("/signin", follow_redirects=False)
        assert page.status_code == 303
        home = await client.get("/static/console.css")
        assert home.status_code == 200
        # The session's token is on every page with a form; take it from the sign-out form.
        denied = await client.post("/logout", data={}, headers={"Origin": URL})
        assert denied.status_code == 403 and "CSRF" in denied.text
        wrong = await client.post("/logout", data={"csrf_token": "guess"}, headers={"Origin": URL})
        assert wrong.status_code == 403
        cross = await client.post("/logout", data={"csrf_token": "guess"}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and "cross-origin" in cross.text
        site = await client.post("/logout", data={}, headers={"Sec-Fetch-Site": "cross-site"})
        assert site.status_code == 403 and "cross-site" in site.text
        null = await client.post("/logout", data={}, headers={"Origin": "null"})
        assert null.status_code == 403


async def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for path in ("/signin", "/nope", "/static/console.css", "/favicon.ico", "/login"):
            response = await client.get(path)
            headers = response.headers
            assert headers["content-security-policy"].startswith("default-src 'self'"), path
            assert "'unsafe-inline'" not in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
            assert headers["referrer-policy"] == "same-origin"
            assert "strict-transport-security" not in headers  # plain http


async def test_over_https_the_session_cookie_is_secure_and_host_prefixed(tmp_path: Path) -> None:
    url = "https://console.tax.example"
    async with _client(tmp_path, public_url=url) as client:
        login = await client.get("/login")
        authorize = await client.get(login.headers["location"])
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', authorize.text))
        granted = await client.post("/demo-idp/authorize", data={**form, "user": "auditor@demo.crossway"})
        done = await client.get(granted.headers["location"])
        cookie = next(c for c in done.headers.get_list("set-cookie") if "crossway_session=" in c)
        assert cookie.startswith("__Host-crossway_session=") and "Secure" in cookie
        assert done.headers["strict-transport-security"] == "max-age=31536000"


async def test_after_sign_in_only_a_path_on_the_console_is_a_destination(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            login = await client.get("/login", params={"next": target})
            authorize = await client.get(login.headers["location"])
            form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', authorize.text))
            granted = await client.post("/demo-idp/authorize", data={**form, "user": "auditor@demo.crossway"})
            done = await client.get(granted.headers["location"])
            assert 'url=/"' in done.text, target


def test_no_template_has_an_inline_script_style_or_handler() -> None:
    patterns = (
        r"<script(?![^>]*\bsrc=)[^>]*>",
        r"<style\b",
        r"\sstyle\s*=",
        r"\son[a-z]+\s*=",
        r"javascript:",
        r"hx-on",
        r"\|\s*safe\b",  # nothing bypasses autoescaping
    )
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        for pattern in patterns:
            assert re.search(pattern, text, re.I) is None, f"{template.name}: {pattern}"


def test_the_vendored_htmx_is_the_pinned_release() -> None:
    data = (TEMPLATES.parent / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert b'version:"2.0.11"' in data


def test_a_bad_console_toml_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    path.write_text('[oidc]\nissuer = "https://idp"\nclient_id = "c"\nauthorization_endpoint = "idp/authorize"\n')
    with pytest.raises(ConfigError, match=r"console.toml: \[oidc\] authorization_endpoint"):
        load_config(path, {})
    path.write_text("[console]\n")
    with pytest.raises(ConfigError, match=r"\[top\] oidc: section is missing"):
        load_config(path, {})
    path.write_text(
        '[oidc]\nissuer = "https://idp"\nclient_id = "c"\nauthorization_endpoint = "https://idp/a"\n'
        'token_endpoint = "https://idp/t"\npublic_keys = ["idp.pem"]\nclient_secret_env = "CONSOLE_SECRET"\n'
    )
    with pytest.raises(ConfigError, match="names CONSOLE_SECRET, which is not set"):
        load_config(path, {})
    assert load_config(path, {"CONSOLE_SECRET": "s"}).oidc.client_secret == "s"
    path.write_text('[console]\npublic_url = "https://console.example/crossway"\n')
    with pytest.raises(ConfigError, match="is not an origin"):
        load_config(path, {})
    path.write_text('[demo_provider]\nkey = "k"\naudiences = ["a"]\naudience = "typo"\n')
    with pytest.raises(ConfigError, match=r"\[demo_provider\] audience: unknown key") as typo:
        load_config(path, {})
    assert "did you mean `audiences`" in typo.value.hint
