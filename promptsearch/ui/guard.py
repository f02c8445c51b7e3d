"""Who may talk to the server: an ASGI layer in front of every request.

- On loopback (the default) only requests whose Host header names this server are served, so a web page the
  user visits cannot reach it through a DNS name rebound to 127.0.0.1.
- On any other address a random token, printed once at start, is required on every request: as ``?token=``
  (answered with a cookie and a redirect that drops it from the address bar), the cookie, or an
  ``Authorization: Bearer`` header.
- Every answer carries a content security policy that allows only the app's own scripts and styles (no inline
  script can run even if some text escaped escaping), and tells the browser not to send addresses on.
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from starlette.datastructures import Headers, QueryParams

COOKIE = "promptsearch_token"
SECURITY_HEADERS = [
    (b"content-security-policy", (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                  b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class Guard:
    def __init__(self, app, token: str | None, hosts: set[str] | None):
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if self.hosts is not None and headers.get("host", "") not in self.hosts:
            return await _plain(send, 400, "bad Host header: open the address the server printed")
        if self.token:
            query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token")
            if given is not None:
                if not _same(given, self.token):
                    return await _plain(send, 401, "wrong token")
                rest = urlencode([(k, v) for k, v in query.multi_items() if k != "token"])
                where = scope.get("path", "/") + ("?" + rest if rest else "")
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                return await _plain(send, 303, "", [(b"location", where.encode("latin-1")), (b"set-cookie", cookie.encode())])
            if not (_same(_cookie(headers), self.token) or _same(_bearer(headers), self.token)):
                return await _plain(send, 401, "this server needs the token it printed when it started: "
                                               "open the address it printed (with ?token=...)")

        async def send_secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        return await self.app(scope, receive, send_secured)


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _cookie(headers: Headers) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:  # a malformed Cookie header is no token
        return None
    return jar[COOKIE].value if COOKIE in jar else None


def _bearer(headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


async def _plain(send, status: int, text: str, extra=()):
    body = (text + "\n").encode() if text else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            *extra, *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
