"""What a request to an auth host carries, the session cookies auth hosts set, and the
redaction of both before a request or response head is kept anywhere.

Cookies are kept per host (the exact host that set them) and sent back only to that host, if
it is an auth host; the crawler keeps no other cookies (docs/decisions.md).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from http.cookies import Morsel

from .hosts import host_listed
from .settings import AuthConfig

REDACTED = "[redacted]"
# Request headers that carry a credential whoever configured them.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class Credentials:
    """The credentials of `[auth]` (None: there are none) and the cookies auth hosts set."""

    def __init__(self, auth: AuthConfig | None) -> None:
        self.auth = auth
        self._jar: dict[str, dict[str, str]] = {}  # host -> cookie name -> value
        self._secret_headers = _CREDENTIAL_HEADERS | {
            name.lower() for name in (auth.headers if auth else {})
        }
        # Values too short to be told from ordinary text are not scrubbed (the headers that
        # carry them are redacted by name all the same).
        secrets = [value for value in (auth.secrets() if auth else []) if len(value) >= 4]
        self._secrets = sorted(secrets, key=len, reverse=True)

    def for_host(self, host: str) -> bool:
        """True when `host` may receive the credentials."""
        return self.auth is not None and host_listed(host, self.auth.hosts)

    def headers(self, host: str) -> dict[str, str]:
        """The headers that carry the credentials to `host`; none for a host not listed."""
        auth = self.auth
        if auth is None or not self.for_host(host):
            return {}
        headers = dict(auth.headers)
        if auth.basic.user:
            pair = f"{auth.basic.user}:{auth.basic.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        cookies = {**auth.cookies, **self._jar.get(host, {})}
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        return headers

    def keep_cookies(self, host: str, cookies: Iterable[Morsel[str]]) -> bool:
        """Keep what an auth host's Set-Cookie headers set (a cookie set expired is dropped);
        True if any was set. Another host's cookies are not kept."""
        if not self.for_host(host):
            return False
        jar = self._jar.setdefault(host, {})
        kept = False
        for morsel in cookies:
            if morsel["max-age"] == "0" or not morsel.value:
                jar.pop(morsel.key, None)
            else:
                jar[morsel.key] = morsel.value
                kept = True
        return kept

    def forget_cookies(self, host: str) -> None:
        """The host's session ended: its cookies are dropped before the next login."""
        self._jar.pop(host, None)

    def redact_request(self, lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Request headers as they may be kept: credential headers' values `[redacted]`."""
        return [
            (name, REDACTED if name.lower() in self._secret_headers else self.scrub(value))
            for name, value in lines
        ]

    def redact_response(self, host: str, lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Response headers as they may be kept: an auth host's Set-Cookie `[redacted]`."""
        auth_host = self.for_host(host)
        return [
            (name, REDACTED if auth_host and name.lower() == "set-cookie" else self.scrub(value))
            for name, value in lines
        ]

    def scrub(self, text: str) -> str:
        """`text` with any configured secret value replaced (a server may echo one back)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text
