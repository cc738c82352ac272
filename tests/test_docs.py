"""The README documents every command and config key of the spec."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from crawler.config import Config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SPEC = ROOT.parent / "shared" / "SPEC.md"


def _config_keys() -> list[str]:
    defaults = Config()
    keys: list[str] = []
    for section in dataclasses.fields(Config):
        if section.name != "source":
            fields = dataclasses.fields(getattr(defaults, section.name))
            keys.extend(f"{section.name}.{key.name}" for key in fields)
    return keys


@pytest.mark.parametrize("key", _config_keys())
def test_every_config_key_is_in_the_readme(key: str) -> None:
    section, name = key.split(".")
    block = README.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
    assert re.search(rf"^{name} = ", block, re.MULTILINE), key


@pytest.mark.parametrize("command", ["crawl", "resume", "stats", "query"])
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"crawler {command}" in README


@pytest.mark.parametrize("command", ["make crawl", "make test"])
def test_the_two_make_commands_are_in_the_readme(command: str) -> None:
    assert command in README


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/SPEC.md is not beside the repository")
def test_spec_keys_are_all_implemented() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    toml = spec.split("```toml", 1)[1].split("```", 1)[0]
    section = ""
    spec_keys = []
    for line in toml.splitlines():
        if match := re.match(r"\[(\w+)\]", line):
            section = match.group(1)
        elif match := re.match(r"(\w+) = ", line):
            spec_keys.append(f"{section}.{match.group(1)}")
    assert spec_keys
    assert set(spec_keys) <= set(_config_keys())  # the spec's names are kept; we may add


def test_public_api() -> None:
    import crawler

    assert set(crawler.__all__) == {
        "Config",
        "ConfigError",
        "Crawler",
        "CrawlerError",
        "RunResult",
        "StoreError",
        "UsageError",
    }
    assert all(hasattr(crawler, name) for name in crawler.__all__)
