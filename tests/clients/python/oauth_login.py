"""The Python MCP SDK logs in to `shoal serve --auth oauth` with the authorization-code flow,
a headless browser standing in for the user.

Usage: python oauth_login.py SERVER_URL dcr|cimd [USER] [CERT_PEM KEY_PEM]

The client is the SDK's `ClientSession` over `streamable_http_client` with an httpx client
whose auth is the SDK's `OAuthClientProvider` (in-memory `TokenStorage`). Its redirect URI,
http://127.0.0.1:<port>/callback, is never requested: `redirect_handler` is a headless browser
(httpx without redirects, a cookie jar, forms read with the stdlib's html.parser) that fills
the upstream provider's login form (`login=<USER>`) and Shoal's consent form
(`decision=approve`) and stops at the first redirect to the redirect URI; `callback_handler`
returns its `code` and `state` (and the script checks `iss`).

Phase 1 (login): the first request is refused with 401; the SDK discovers the metadata, gets a
client_id by dynamic registration (dcr) or as the URL of a Client ID Metadata Document (cimd:
served over https from this process with CERT_PEM/KEY_PEM, whose CA shoal must trust, and
shoal must run with --client-metadata-private-targets), the browser walks, the SDK exchanges
the code; the session lists the tools and calls `echo`. Then it prints
{"phase":"logged-in",...} and waits for one line on stdin (xtask restarts a replica
meanwhile; end of input goes on at once).

Phase 2 (refresh): the access token is marked expired (SDK 1.x refreshes before a request when
its token has expired, and on a 401 starts a new login instead), so a new session makes the
SDK use the refresh token (no browser: the handler fails if called), then lists the tools and
calls `echo` again. The refresh token must have rotated.

Stdout: the phase line, then one JSON line of results; exit 0, or a `FAILED:` line on stderr
and exit 1.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import threading
import time
import traceback
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import anyio
import httpx
from mcp import ClientSession, types
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

SDK = "python-sdk"
# The scope shoal requires (`--required-scopes`), which the SDK learns from the challenge.
SCOPE = "mcp:tools"
# The whole run, phase 2's wait for stdin included.
TIMEOUT_SECONDS = 120
# The most requests one browser walk makes.
MAX_STEPS = 20
# The redirect URI's port: nothing listens there, the walk stops before it.
CALLBACK_PORT = 53683
REDIRECT_URL = f"http://127.0.0.1:{CALLBACK_PORT}/callback"
CLIENT_METADATA: dict[str, Any] = {
    "client_name": "Shoal Python SDK check",
    "redirect_uris": [REDIRECT_URL],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


class CheckError(Exception):
    """A check against the server's behaviour failed."""


def check(condition: Any, message: str) -> None:
    if not condition:
        raise CheckError(message)


def log(message: str) -> None:
    print(f"[{SDK}] {message}", file=sys.stderr, flush=True)


# === a browser without a person ===


class FormReader(HTMLParser):
    """The first form of a page: its attributes, inputs and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] | None = None
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[tuple[str, str]] = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and self.form is None:
            self.form = a
            self._in_form = True
        elif self._in_form and not self._done and tag in ("input", "button"):
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            if not a.get("name"):
                return
            if kind == "submit":
                self.buttons.append((a["name"], a.get("value", "")))
            elif kind in ("button", "reset", "image", "file"):
                return
            elif kind in ("checkbox", "radio") and "checked" not in a:
                return
            else:
                self.inputs.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def read_form(html: str, user: str, decision: str) -> tuple[str, str | None, list[tuple[str, str]]]:
    """The first form of `html` filled in: (method, action, fields)."""
    reader = FormReader()
    reader.feed(html)
    check(reader.form is not None, "an HTML page without a form")
    assert reader.form is not None
    fields = [
        (a["name"], user if a["name"] == "login" else a.get("value", "")) for a in reader.inputs
    ]
    if reader.buttons:
        chosen = [b for b in reader.buttons if b[1] == decision]
        check(chosen, f"a form without a {decision} button: {reader.buttons}")
        fields.append(chosen[0])
    return reader.form.get("method", "get").lower(), reader.form.get("action"), fields


async def walk(start: str, stop_at: str, user: str, decision: str = "approve") -> tuple[str, list[str]]:
    """Walks from `start` to the first redirect to `stop_at`; that URL and the pages seen."""
    visits: list[str] = []
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        method, url, form = "GET", start, None
        while len(visits) < MAX_STEPS:
            response = await browser.request(method, url, data=form)
            visits.append(f"{method} {urlsplit(url).path} {response.status_code}")
            if response.is_redirect:
                location = response.headers.get("location")
                check(location, f"{method} {url}: a redirect without Location")
                target = urljoin(url, location)
                if target.startswith(stop_at):
                    return target, visits
                # 307 and 308 repeat the request; the others become a GET.
                if response.status_code not in (307, 308):
                    method, form = "GET", None
                url = target
                continue
            check(
                response.status_code == 200
                and response.headers.get("content-type", "").startswith("text/html"),
                f"{method} {url}: HTTP {response.status_code} {response.text[:300]} "
                f"(after {', '.join(visits)})",
            )
            form_method, action, fields = read_form(response.text, user, decision)
            target = urljoin(url, action or url)
            if form_method == "post":
                method, url, form = "POST", target, dict(fields)
            else:
                method, url, form = "GET", f"{target.split('?')[0]}?{urlencode(fields)}", None
    raise CheckError(f"no redirect to {stop_at} after {MAX_STEPS} requests: {', '.join(visits)}")


# === the provider's parts ===


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The provider's redirect and callback handlers."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.allowed = True
        self.walks: list[list[str]] = []
        self.code: str | None = None
        self.state: str | None = None
        self.iss: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        check(self.allowed, f"the SDK sent the user to log in again: {authorization_url}")
        redirect, visits = await walk(authorization_url, REDIRECT_URL, self.user)
        self.walks.append(visits)
        params = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
        check("error" not in params, f"the authorization failed: {redirect}")
        check(params.get("code"), f"no code in the redirect: {redirect}")
        check(params.get("iss"), f"no iss in the redirect (RFC 9207): {redirect}")
        self.code, self.state, self.iss = params["code"], params.get("state"), params["iss"]

    async def callback(self) -> tuple[str, str | None]:
        check(self.code, "the SDK waits for a callback before any redirect")
        assert self.code is not None
        return self.code, self.state


def serve_client_metadata(cert: str, key: str) -> tuple[ThreadingHTTPServer, str, list[int]]:
    """Serves the client metadata document at https://127.0.0.1:<port>/oauth/client.json."""
    fetches = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            fetches[0] += 1
            if self.path != "/oauth/client.json":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({**CLIENT_METADATA, "client_id": url}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}/oauth/client.json"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url, fetches


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# === the client ===


class Recorder:
    """Every request the SDK's httpx client sends, with its status."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def on_request(self, request: httpx.Request) -> None:
        entry: dict[str, Any] = {"method": request.method, "path": request.url.path}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(request.content.decode())
            entry["grant_type"] = form.get("grant_type", [None])[0]
        self.requests.append(entry)
        request.extensions["shoal_entry"] = entry

    async def on_response(self, response: httpx.Response) -> None:
        entry = response.request.extensions.get("shoal_entry")
        if entry is not None:
            entry["status"] = response.status_code


async def connect_and_call(url: str, provider: OAuthClientProvider, recorder: Recorder, text: str) -> list[str]:
    """A new session over a new httpx client: tools listed, `echo` called."""
    http = httpx.AsyncClient(
        auth=provider,
        timeout=30,
        follow_redirects=True,
        event_hooks={"request": [recorder.on_request], "response": [recorder.on_response]},
    )
    async with http, streamable_http_client(url, http_client=http) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = [tool.name for tool in (await session.list_tools()).tools]
            check("echo" in names, f"echo is not listed: {names}")
            result = await session.call_tool("echo", {"text": text})
            texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
            check(texts == [text], f"echo answered {result.model_dump_json()}")
            return names


async def main(argv: list[str]) -> dict[str, Any]:
    if len(argv) < 2 or argv[1] not in ("dcr", "cimd") or (argv[1] == "cimd" and len(argv) < 5):
        print("usage: python oauth_login.py SERVER_URL dcr|cimd [USER] [CERT_PEM KEY_PEM]", file=sys.stderr)
        sys.exit(2)
    url, mode = argv[0], argv[1]
    user = argv[2] if len(argv) > 2 else "alice"
    metadata_server, metadata_url, fetches = (None, None, [0])
    if mode == "cimd":
        metadata_server, metadata_url, fetches = serve_client_metadata(argv[3], argv[4])

    storage = MemoryStorage()
    browser = Browser(user)
    recorder = Recorder()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata.model_validate(CLIENT_METADATA),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
        client_metadata_url=metadata_url,
    )

    # Phase 1: refused, discovery, client id, the browser, the code exchange, the calls.
    tools = await connect_and_call(url, provider, recorder, f"hello from {SDK} ({mode})")
    check(browser.walks, "the SDK did not send the user to log in")
    client_id = storage.client_info.client_id if storage.client_info else None
    registrations = [r for r in recorder.requests if r["method"] == "POST" and r["path"] == "/oauth/register"]
    if mode == "dcr":
        check(len(registrations) == 1 and registrations[0].get("status") == 201, f"one registration: {registrations}")
        check(client_id, "no registered client_id")
    else:
        check(not registrations, f"a CIMD client registered: {registrations}")
        check(client_id == metadata_url, f"the client_id {client_id} is not the document's URL")
        check(fetches[0] > 0, "shoal never fetched the client metadata document")
    login_tokens = storage.tokens
    check(login_tokens and login_tokens.refresh_token, "tokens without a refresh token")
    assert login_tokens is not None
    access_claims = claims(login_tokens.access_token)
    check(access_claims.get("sub") == user, f"the token's sub is {access_claims.get('sub')}, not {user}")
    check(access_claims.get("client_id") == client_id, f"the token's client_id is {access_claims.get('client_id')}")
    check(SCOPE in access_claims.get("scope", "").split(), f"the token's scope {access_claims.get('scope')} lacks {SCOPE}")
    log(f"ok: logged in as {user} with {mode} client {client_id}, listed {len(tools)} tools, echo answered")
    print(json.dumps({"phase": "logged-in", "sdk": SDK, "mode": mode, "client_id": client_id}), flush=True)

    # Between the phases xtask restarts a replica.
    await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)

    # Phase 2: the access token has expired; the refresh token must do, without a browser.
    browser.allowed = False
    provider.context.token_expiry_time = time.time() - 1
    before = len(recorder.requests)
    await connect_and_call(url, provider, recorder, f"hello again from {SDK} ({mode})")
    refreshes = [
        r for r in recorder.requests[before:] if r["path"] == "/oauth/token" and r.get("grant_type") == "refresh_token"
    ]
    check(len(refreshes) == 1 and refreshes[0].get("status") == 200, f"one refresh: {refreshes}")
    refreshed = storage.tokens
    check(refreshed and refreshed.access_token != login_tokens.access_token, "the access token was not replaced")
    assert refreshed is not None
    check(
        refreshed.refresh_token and refreshed.refresh_token != login_tokens.refresh_token,
        "the refresh token did not rotate",
    )
    log("ok: refreshed after the restart, listed the tools, echo answered")
    if metadata_server is not None:
        metadata_server.shutdown()

    def described(r: dict[str, Any]) -> str:
        grant = f" ({r['grant_type']})" if r.get("grant_type") else ""
        return f"{r['method']} {r['path']}{grant} {r.get('status')}"

    return {
        "sdk": SDK,
        "mode": mode,
        "ok": True,
        "user": user,
        "client_id": client_id,
        "iss": browser.iss,
        "token_claims": {k: access_claims.get(k) for k in ("iss", "aud", "sub", "scope")},
        "tools": tools,
        "browser_steps": browser.walks,
        "metadata_document_fetches": fetches[0] if mode == "cimd" else None,
        "refresh": {"status": refreshes[0].get("status"), "rotated": True},
        "requests": [described(r) for r in recorder.requests],
    }


async def bounded(argv: list[str]) -> dict[str, Any]:
    with anyio.fail_after(TIMEOUT_SECONDS):
        return await main(argv)


if __name__ == "__main__":
    try:
        try:
            results = anyio.run(bounded, sys.argv[1:])
        except BaseExceptionGroup as group:
            # A task group wraps what failed inside the session: report that, a check first.
            checks = group.subgroup(lambda e: isinstance(e, CheckError))
            first: BaseException = checks if checks is not None else group
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
    except CheckError as error:
        print(f"FAILED: [{SDK}] {error}", file=sys.stderr)
        sys.exit(1)
    except BaseException as error:  # noqa: BLE001 (any failure is reported, with its trace)
        if isinstance(error, SystemExit):
            raise
        traceback.print_exc()
        print(f"FAILED: [{SDK}] {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(results), flush=True)
