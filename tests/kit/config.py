"""One config builder: TOML-shaped sections with test defaults, as a Config or a config file.

Defaults suit tests: no delay, a short timeout, no retries, every name in `hosts` resolved to
127.0.0.1, the database `crawl.db` beside the config (or the PostgreSQL database at `pg_url`).
`sections` are merged key by key over the defaults: `crawl={"max_pages": 5}`; a key given as
None is left out (the crawler's own default): `fetch={"retries": None}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crawler.config import Config
from crawler.demo_site import DEMO_HOSTS

Sections = dict[str, dict[str, Any]]


def config_sections(
    seeds: list[str],
    *,
    hosts: Iterable[str],
    db: str = "crawl.db",
    pg_url: str | None = None,
    **sections: Mapping[str, Any],
) -> Sections:
    """The config as TOML sections: the test defaults, then `sections` over them."""
    raw: Sections = {
        "crawl": {"seeds": seeds, "concurrency": 8},
        "politeness": {"delay": 0},
        "fetch": {
            "timeout": 5,
            "connect_timeout": 2,
            "retries": 0,
            "resolve": dict.fromkeys(hosts, "127.0.0.1"),
        },
        "storage": {"path": db} if pg_url is None else {"url": pg_url},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return {
        name: {k: v for k, v in values.items() if v is not None} for name, values in raw.items()
    }


def build_config(folder: Path, seeds: list[str], **options: Any) -> Config:
    """A Config read as if from `folder`/config.toml (so a relative `db` lies in `folder`)."""
    return Config.from_dict(config_sections(seeds, **options), source=folder / "config.toml")


def write_config(path: Path, seeds: list[str], **options: Any) -> Path:
    """`config_sections(seeds, **options)` written to `path` as TOML; returns `path`."""
    path.write_text(to_toml(config_sections(seeds, **options)), encoding="utf-8")
    return path


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Sections of scalars, lists and inline tables as TOML text."""
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {_value(v)}\n" for key, v in values.items())
        for name, values in sections.items()
    )


def _value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_value(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, float) else str(value)


def write_demo_config(folder: Path, port: int, *, delay: float = 0, **crawl: Any) -> Path:
    """`folder`/config.toml for the demo site served on `port` (crawl.db beside it): its hosts,
    the politeness `delay`, more `crawl` keys, and the crawler's own fetch defaults."""
    return write_config(
        folder / "config.toml",
        [f"http://docs.demo.test:{port}/"],
        hosts=DEMO_HOSTS,
        crawl={"allowed_domains": ["demo.test"], **crawl},
        politeness={"delay": delay},
        fetch={"connect_timeout": None, "retries": None},
    )
