"""The config file: TOML sections read into frozen dataclasses, every key checked.

`Config.load(path)` is the only way in. Every key of SPEC.md is optional except `crawl.seeds`;
an unknown key, a wrong type, a bad regex or a bad URL raises ConfigError with one line naming
the file and the key as written (`crawl.seeds`).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from .auth.settings import AuthConfig, read_auth
from .errors import ConfigError

if TYPE_CHECKING:
    from .extract.fields import Field

# Links to these are not fetched (crawl.skip_extensions): files a site crawler has no use for,
# whose downloads cost the site bandwidth. Lower case, without the dot.
DEFAULT_SKIP_EXTENSIONS = (
    *("pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "epub"),
    *("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "avif", "heic", "ico", "svg"),
    *("mp3", "wav", "ogg", "oga", "flac", "aac", "m4a", "wma", "opus", "mid", "midi"),
    *("mp4", "m4v", "webm", "avi", "mov", "mkv", "wmv", "flv", "mpg", "mpeg", "3gp"),
    *("zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "tar", "iso", "dmg"),
    *("exe", "msi", "bin", "apk", "deb", "rpm", "jar", "woff", "woff2", "ttf", "otf", "eot"),
)
# Seconds a run holds what it claims without renewing it (storage.lease): the one default,
# which the storage backends and the frontier take too.
DEFAULT_LEASE = 60.0
# A table of header name = value (fetch.headers): names kept as written.
Headers = dict[str, str]


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    seeds: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_depth: int = 10
    max_pages: int = 0
    max_pages_per_host: int = 0
    max_duration: float = 0
    max_url_length: int = 2048
    concurrency: int = 16
    max_query_variants: int = 1000
    skip_extensions: tuple[str, ...] = DEFAULT_SKIP_EXTENSIONS
    sitemaps: tuple[str, ...] = ()
    robots_sitemaps: bool = True


@dataclass(frozen=True, slots=True)
class PolitenessConfig:
    user_agent: str = "crawler/0.1 (+https://example.org/bot)"
    delay: float = 1.0
    per_host_concurrency: int = 1
    obey_robots: bool = True
    max_crawl_delay: float = 60
    robots_ttl: float = 86400
    follow_nofollow: bool = False

    @property
    def robots_token(self) -> str:
        """The first product token of the User-Agent, lower-cased: our name in robots.txt."""
        return self.user_agent.split("/", 1)[0].split()[0].lower()


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout: float = 30
    connect_timeout: float = 10
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    retries: int = 2
    resolve: dict[str, str] = field(default_factory=dict)
    headers: Headers = field(default_factory=dict)  # on every request
    proxy: str = ""  # "http://host:port", or "env": HTTP_PROXY, HTTPS_PROXY, NO_PROXY


@dataclass(frozen=True, slots=True)
class StorageConfig:
    path: Path = Path("crawl.db")
    store_body: bool = True
    store_text: bool = True  # each HTML page's readable text in `pages.text` (searchable)
    url: str = ""  # postgresql://…: the crawl lives in PostgreSQL instead of `path`
    lease: float = DEFAULT_LEASE  # seconds a process holds its hosts without renewing them


@dataclass(frozen=True, slots=True)
class Config:
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    politeness: PolitenessConfig = field(default_factory=PolitenessConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    fields: tuple[Field, ...] = ()  # [fields]: what to pull out of every 2xx HTML page
    source: Path = Path("config.toml")
    auth: AuthConfig | None = None  # [auth]; None: no credentials are sent

    @property
    def database(self) -> str | Path:
        """Where the crawl is: the PostgreSQL URL (storage.url), else the SQLite file."""
        return self.storage.url or self.storage.path

    @property
    def lease(self) -> float:
        """Seconds a run holds its hosts without renewing them: storage.lease; with SQLite,
        where one process crawls and the lease is only bookkeeping, at least two timeouts."""
        if self.storage.url:
            return self.storage.lease
        return max(self.storage.lease, 2 * self.fetch.timeout)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read and check a config file; a relative storage.path is taken from the file's folder."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(raw, source=path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: Path) -> Config:
        """Build a Config from parsed TOML, checking every key."""
        reader = _Reader(source)
        sections: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "fields":
                sections[name] = _fields(reader, value)
                continue
            if name not in _SECTIONS and name != "auth":
                raise reader.error(name, "unknown section")
            if not isinstance(value, dict):
                raise reader.error(name, f"must be a table, got {value!r}")
            if name == "auth":
                sections[name] = read_auth(value, reader.error)
            else:
                sections[name] = reader.section(name, _SECTIONS[name], value)
        config = cls(source=source, **sections)
        _check(config, reader)
        storage = raw.get("storage", {})
        if "path" in storage and storage.get("url"):
            raise reader.error("storage.url", "set together with storage.path: choose one")
        if not config.storage.path.is_absolute():
            storage = dataclasses.replace(config.storage, path=source.parent / config.storage.path)
            config = dataclasses.replace(config, storage=storage)
        return config


_SECTIONS: dict[str, type[Any]] = {
    "crawl": CrawlConfig,
    "politeness": PolitenessConfig,
    "fetch": FetchConfig,
    "storage": StorageConfig,
}


# "" means not set, as SPEC's example writes it
_MAY_BE_EMPTY = frozenset({"storage.url", "fetch.proxy"})


class _Reader:
    """Converts one TOML table into a dataclass, naming `section.key` in every error."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}")

    def section(self, name: str, cls: type[Any], table: dict[str, Any]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in table.items():
            if key not in fields:
                raise self.error(f"{name}.{key}", "unknown key")
            values[key] = self.value(f"{name}.{key}", fields[key].type, value)
        return cls(**values)

    def value(self, key: str, kind: Any, value: Any) -> Any:
        kind = str(kind)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise self.error(key, f"expected true or false, got {value!r}")
        if kind in ("int", "float"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or value < 0 or (kind == "int" and value != int(value)):
                expected = "a whole number" if kind == "int" else "a number"
                raise self.error(key, f"expected {expected} >= 0, got {value!r}")
            return int(value) if kind == "int" else float(value)
        if kind == "str":
            if isinstance(value, str) and (value.strip() or key in _MAY_BE_EMPTY):
                return value
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        if kind == "Path":
            return Path(self.value(key, "str", value))
        if kind == "tuple[str, ...]":
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise self.error(key, f"expected a list of strings, got {value!r}")
        if kind == "dict[str, str]":
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                return {k.lower(): v for k, v in value.items()}
            raise self.error(key, f"expected a table of host = address strings, got {value!r}")
        if kind == "Headers":
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                return dict(value)
            raise self.error(key, f"expected a table of header = value strings, got {value!r}")
        raise AssertionError(f"no reader for {kind}")  # a field type this module forgot


def _check(config: Config, reader: _Reader) -> None:
    """Checks that span more than a value's type: URLs, regexes, ranges."""
    crawl = config.crawl
    if not crawl.seeds:
        raise reader.error("crawl.seeds", "missing: give at least one http or https URL")
    for seed in crawl.seeds:
        _check_url(reader, "crawl.seeds", seed)
    for sitemap in crawl.sitemaps:
        _check_url(reader, "crawl.sitemaps", sitemap)
    for key in ("include", "exclude"):
        for pattern in getattr(crawl, key):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise reader.error(f"crawl.{key}", f"bad regex {pattern!r}: {exc}") from None
    for domain in crawl.allowed_domains:
        if not domain or "/" in domain or ":" in domain:
            raise reader.error("crawl.allowed_domains", f"expected a host name, got {domain!r}")
    for extension in crawl.skip_extensions:
        if not extension.strip(".") or "/" in extension or "?" in extension:
            raise reader.error("crawl.skip_extensions", f"expected an extension, got {extension!r}")
    for name, minimum in (("concurrency", 1), ("max_url_length", 16)):
        if getattr(crawl, name) < minimum:
            raise reader.error(f"crawl.{name}", f"must be at least {minimum}")
    if config.politeness.per_host_concurrency < 1:
        raise reader.error("politeness.per_host_concurrency", "must be at least 1")
    if not config.politeness.user_agent.split("/", 1)[0].strip():
        raise reader.error("politeness.user_agent", "must start with a product token")
    if config.fetch.timeout <= 0 or config.fetch.connect_timeout <= 0:
        key = "fetch.timeout" if config.fetch.timeout <= 0 else "fetch.connect_timeout"
        raise reader.error(key, "must be more than 0")
    _check_storage(config, reader)
    _check_fetch_headers(config.fetch, reader)
    for host, address in config.fetch.resolve.items():
        if not address.strip() or "/" in address:
            raise reader.error(f"fetch.resolve.{host}", f"expected an IP address, got {address!r}")


def _check_storage(config: Config, reader: _Reader) -> None:
    storage = config.storage
    if storage.url:
        try:
            url = URL(storage.url)
        except (ValueError, TypeError) as exc:
            raise reader.error("storage.url", f"bad URL {storage.url!r}: {exc}") from None
        if url.scheme not in ("postgresql", "postgres") or not url.host or not url.path.strip("/"):
            raise reader.error(
                "storage.url",
                f"expected postgresql://user@host:port/database, got {storage.url!r}",
            )
    # A request never starts unless the lease outlasts its timeout: a shorter lease would
    # let no request start at all. (SQLite has one process; its lease is only bookkeeping.)
    if storage.url and storage.lease <= config.fetch.timeout:
        timeout = config.fetch.timeout
        raise reader.error(
            "storage.lease",
            f"must be longer than fetch.timeout ({timeout:g} s), got {storage.lease:g}",
        )


# fetch.headers go to every host: a credential there would too, and User-Agent has its key.
_NOT_IN_FETCH_HEADERS = {
    "authorization": "a credential: put it in auth.headers, which go to auth.hosts only",
    "proxy-authorization": "a credential: write it in fetch.proxy as http://user:password@host",
    "cookie": "a credential: put it in auth.cookies, which go to auth.hosts only",
    "user-agent": "set politeness.user_agent instead",
}


def _check_fetch_headers(fetch: FetchConfig, reader: _Reader) -> None:
    for name in fetch.headers:
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise reader.error(f"fetch.headers.{name}", "not a valid header name")
        problem = _NOT_IN_FETCH_HEADERS.get(name.lower())
        if problem is not None:
            raise reader.error(f"fetch.headers.{name}", problem)
    if fetch.proxy not in ("", "env"):
        try:
            proxy = URL(fetch.proxy)
        except (ValueError, TypeError) as exc:
            raise reader.error("fetch.proxy", f"bad URL: {exc}") from None
        if proxy.scheme != "http" or not proxy.host or proxy.path not in ("", "/"):
            raise reader.error(
                "fetch.proxy", f'expected "http://host:port" or "env", got {proxy.host or ""!r}'
            )


def _fields(reader: _Reader, table: Any) -> tuple[Field, ...]:
    """[fields]: name = "CSS selector [@attr] [[]]", each selector tried once (fields.py).
    A name is any non-empty TOML key: every string is a JSON object's key."""
    # Here, not at the top: the selectors are extraction's business, and whatever imports the
    # config (the frontier) need not load it.
    from .extract.fields import parse_field

    if not isinstance(table, dict):
        raise reader.error("fields", f"must be a table, got {table!r}")
    fields = []
    for name, spec in table.items():
        key = f"fields.{name}"
        if not name.strip():
            raise reader.error(key, "expected a field name that is not blank")
        if not isinstance(spec, str):
            raise reader.error(key, f"expected a CSS selector string, got {spec!r}")
        try:
            fields.append(parse_field(name, spec))
        except ValueError as exc:
            raise reader.error(key, str(exc)) from None
    return tuple(fields)


def _check_url(reader: _Reader, key: str, value: str) -> None:
    try:
        url = URL(value)
    except (ValueError, TypeError) as exc:
        raise reader.error(key, f"bad URL {value!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise reader.error(key, f"expected an http or https URL, got {value!r}")
