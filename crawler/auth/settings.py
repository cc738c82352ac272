"""The `[auth]` section: read, checked, and its "env:NAME" values taken from the environment.

`read_auth(table, error, environ)` is called by `Config.from_dict`; every problem is one
ConfigError naming the key as written (`auth.login.url`). Values that carry a secret are kept
out of the dataclasses' repr, so a logged Config shows none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from ..errors import ConfigError
from .hosts import host_entry, host_listed, url_host

# URLs a logged-in crawler must not follow: they end its session or destroy data.
DEFAULT_AUTH_EXCLUDE = (
    "(?i)log-?out",
    "(?i)sign-?out",
    "(?i)delete",
    "(?i)remove",
    "(?i)/admin",
)
ENV_PREFIX = "env:"

ErrorFor = Callable[[str, str], ConfigError]


@dataclass(frozen=True, slots=True)
class BasicAuth:
    user: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class LoginForm:
    url: str = ""
    fields: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """`[auth]`, its secrets resolved. `hosts` as `host_entry` writes them."""

    hosts: tuple[str, ...] = ()
    basic: BasicAuth = field(default_factory=BasicAuth)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    cookies: dict[str, str] = field(default_factory=dict, repr=False)
    login: LoginForm = field(default_factory=LoginForm)
    exclude: tuple[str, ...] = DEFAULT_AUTH_EXCLUDE

    @property
    def has_credentials(self) -> bool:
        return bool(self.basic.user or self.headers or self.cookies or self.login.url)

    def secrets(self) -> list[str]:
        """Every value that is a credential (what must never be written anywhere)."""
        values = [self.basic.password, *self.headers.values(), *self.cookies.values()]
        values += self.login.fields.values()
        return [value for value in values if value]


_KEYS = ("hosts", "basic", "headers", "cookies", "login", "exclude")


def read_auth(
    table: Mapping[str, Any], error: ErrorFor, environ: Mapping[str, str] | None = None
) -> AuthConfig:
    """`[auth]` from TOML, checked; "env:NAME" values read from `environ` (os.environ)."""
    env = os.environ if environ is None else environ
    for key in table:
        if key not in _KEYS:
            raise error(f"auth.{key}", "unknown key")
    hosts = _strings(table.get("hosts", []), "auth.hosts", error)
    exclude = _strings(table.get("exclude", list(DEFAULT_AUTH_EXCLUDE)), "auth.exclude", error)
    basic = _table(table.get("basic", {}), "auth.basic", error, env, keys=("user", "password"))
    login = _table(table.get("login", {}), "auth.login", error, {}, keys=("url", "fields"))
    fields = _table(login.get("fields", {}), "auth.login.fields", error, env)
    auth = AuthConfig(
        hosts=tuple(host_entry(h) for h in hosts),
        basic=BasicAuth(basic.get("user", ""), basic.get("password", "")),
        headers=_table(table.get("headers", {}), "auth.headers", error, env),
        cookies=_table(table.get("cookies", {}), "auth.cookies", error, env),
        login=LoginForm(url=login.get("url", ""), fields=fields),
        exclude=exclude,
    )
    _check(auth, error)
    return auth


def _check(auth: AuthConfig, error: ErrorFor) -> None:
    for pattern in auth.exclude:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise error("auth.exclude", f"bad regex {pattern!r}: {exc}") from None
    if not auth.hosts and auth.has_credentials:
        raise error("auth.hosts", "empty while credentials are set: name the hosts that get them")
    for entry in auth.hosts:
        if not entry.strip(".") or "/" in entry or ":" in entry:
            raise error("auth.hosts", f"expected a host name, got {entry!r}")
    if auth.basic.password and not auth.basic.user:
        raise error("auth.basic.user", "missing while auth.basic.password is set")
    if auth.login.fields and not auth.login.url:
        raise error("auth.login.url", "missing while auth.login.fields is set")
    if auth.login.url:
        _check_login_url(auth, error)


def _check_login_url(auth: AuthConfig, error: ErrorFor) -> None:
    try:
        url = URL(auth.login.url)
    except (ValueError, TypeError) as exc:
        raise error("auth.login.url", f"bad URL {auth.login.url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise error("auth.login.url", f"expected an http or https URL, got {auth.login.url!r}")
    if not host_listed(url_host(auth.login.url), auth.hosts):
        raise error("auth.login.url", f"{auth.login.url!r} is not on a host of auth.hosts")


def _strings(value: Any, key: str, error: ErrorFor) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise error(key, f"expected a list of non-empty strings, got {value!r}")


def _table(
    value: Any,
    key: str,
    error: ErrorFor,
    env: Mapping[str, str],
    keys: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A table of strings (a nested table where `keys` allow one), its env: values read."""
    if not isinstance(value, dict):
        raise error(key, "must be a table")
    out: dict[str, Any] = {}
    for name, item in value.items():
        if keys and name not in keys:
            raise error(f"{key}.{name}", "unknown key")
        if isinstance(item, dict) and name == "fields":
            out[name] = item  # read by its own _table call
        elif isinstance(item, str):
            out[name] = _resolved(item, f"{key}.{name}", error, env)
        else:
            raise error(f"{key}.{name}", "expected a string")  # no value shown: it may be secret
    return out


def _resolved(value: str, key: str, error: ErrorFor, env: Mapping[str, str]) -> str:
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    if name not in env:
        raise error(key, f"environment variable {name!r} is not set")
    return env[name]
