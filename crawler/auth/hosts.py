"""Which hosts an `auth.hosts` list names: "staging.example.com" exactly, ".example.com" that
host and its subdomains, never a host that merely ends with the same letters."""

from __future__ import annotations

from yarl import URL


def host_entry(entry: str) -> str:
    """An `auth.hosts` entry as yarl writes hosts (lower case, punycode), its leading dot kept."""
    dot = "." if entry.startswith(".") else ""
    name = entry.strip().strip(".")
    return dot + (URL.build(scheme="http", host=name).raw_host or name.lower())


def host_listed(host: str, entries: tuple[str, ...]) -> bool:
    """True when `host` (as yarl writes it) is one that `entries` (from `host_entry`) names."""
    host = host.lower().rstrip(".")
    for entry in entries:
        if entry.startswith("."):
            # ".example.com": example.com and *.example.com; evil-example.com is neither.
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def url_host(url: str) -> str:
    """The host of a URL as yarl writes it, "" if it has none."""
    return URL(url).raw_host or ""
