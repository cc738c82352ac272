"""The docs keep up with the code: README.md and docs/ document every config key, every command
and every option of the CLI, the README's example config is a config the crawler loads, the
links between the pages lead somewhere, and the README stays a short door (under 12 KB)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from crawler.auth.settings import AuthConfig
from crawler.cli import _parser
from crawler.config import Config

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
DOC_PATHS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README_PATH, *DOC_PATHS]
EVERYTHING = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
SPEC = ROOT.parent / "shared" / "SPEC.md"
README_LIMIT = 12 * 1024

# SPEC.md's [fields] keys are examples of names a user picks (price, image, tags), not keys of
# config.py: test_the_readme_shows_every_field_form checks the README shows their forms.
USER_NAMED = ("fields.",)


def _config_keys() -> list[str]:
    defaults = Config(auth=AuthConfig())  # [auth] is None unless set
    keys: list[str] = []
    for section in dataclasses.fields(Config):
        if section.name not in ("source", "fields"):  # [fields]' keys are the user's names
            fields = dataclasses.fields(getattr(defaults, section.name))
            keys.extend(f"{section.name}.{key.name}" for key in fields)
    return keys


def _toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def _block_keys(toml: str) -> list[str]:
    """The `section.key` names a TOML block sets, one a line, as the docs write them
    (not [fields], whose keys are the user's names: test_the_readme_shows_fields)."""
    section, keys = "", []
    for line in toml.splitlines():
        if match := re.match(r"\[(\w+)\]", line):
            section = match.group(1)
        elif section != "fields" and (match := re.match(r"(\w+) = ", line)):
            keys.append(f"{section}.{match.group(1)}")
    return keys


def _readme_config_block() -> str:
    """The README's config block: the TOML block that has every section."""
    sections = {key.split(".")[0] for key in _config_keys()}
    (block,) = [b for b in _toml_blocks(README) if all(f"[{s}]" in b for s in sections)]
    return block


# -- config keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", _config_keys())
def test_every_config_key_has_its_line_in_the_readme(key: str) -> None:
    section, name = key.split(".")
    block = _readme_config_block().split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(f"{name} = ")]
    assert len(lines) == 1, f"{key}: one line in the README's config block"
    assert " # " in lines[0], f"{key}: its line says what it does, in a comment"


def test_the_readme_config_block_loads_with_every_key_at_its_default(tmp_path: Path) -> None:
    block = _readme_config_block()
    assert sorted(_block_keys(block)) == sorted(_config_keys())
    assert sorted(_block_keys(block)) == sorted(
        f"{section}.{key}"
        for section, table in tomllib.loads(block).items()
        if section != "fields"
        for key in table
    )
    path = tmp_path / "config.toml"
    path.write_text(block, encoding="utf-8")
    loaded, defaults = Config.load(path), Config(auth=AuthConfig())
    shown_otherwise = {"crawl.seeds", "crawl.skip_extensions", "storage.path"}
    for key in set(_config_keys()) - shown_otherwise:
        section, name = key.split(".")
        value = getattr(getattr(loaded, section), name)
        assert value == getattr(getattr(defaults, section), name), key
    assert loaded.crawl.seeds  # the one required key
    assert loaded.storage.path == tmp_path / defaults.storage.path


def test_the_readme_shows_fields_in_each_form(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_readme_config_block(), encoding="utf-8")
    forms = {(f.attr is not None, f.many) for f in Config.load(path).fields}
    assert forms == {(False, False), (True, False), (False, True), (True, True)}


def test_every_toml_block_of_the_readme_is_a_config(tmp_path: Path) -> None:
    blocks = _toml_blocks(README)
    assert len(blocks) >= 2  # a first crawl's config, and the one with every key
    for n, block in enumerate(blocks):
        path = tmp_path / f"config{n}.toml"
        path.write_text(block, encoding="utf-8")
        assert Config.load(path).crawl.seeds, block


def _spec_keys() -> list[str]:
    if not SPEC.exists():
        pytest.skip("../shared/SPEC.md is not beside the repository")
    blocks = _toml_blocks(SPEC.read_text(encoding="utf-8"))
    keys = [key for block in blocks for key in _block_keys(block)]
    assert "crawl.seeds" in keys  # the SPEC's blocks were read
    return keys


def test_spec_keys_are_all_implemented() -> None:
    """The spec's names are kept (we may add), save the names a user picks."""
    implemented = set(_config_keys())
    missing = {k for k in _spec_keys() if k not in implemented}
    assert {k for k in missing if not k.startswith(USER_NAMED)} == set()


def test_spec_keys_that_config_has_are_documented() -> None:
    readme_keys = set(_block_keys(_readme_config_block()))
    for key in set(_spec_keys()) & set(_config_keys()):
        assert key in readme_keys or f"`{key}`" in EVERYTHING, key


# -- commands and options -------------------------------------------------------------------


def _commands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (commands,) = actions
    choices: dict[str, argparse.ArgumentParser] = commands.choices
    return choices


def _words(action: argparse.Action) -> list[str]:
    """What the docs must show of one argument: its option strings (or, for a positional, its
    metavar) and its choices."""
    if action.option_strings:
        words = list(action.option_strings)
    else:
        metavar: Any = action.metavar or action.dest.upper()
        words = [str(metavar)]
    return words + [str(choice) for choice in action.choices or ()]


def _arguments() -> list[Any]:
    return [
        pytest.param(name, word, id=f"{name} {word}")
        for name, command in _commands().items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction)
        for word in _words(action)
    ]


def _usage_lines(command: str) -> list[str]:
    return [line for line in EVERYTHING.splitlines() if f"crawler {command} " in line + " "]


def test_the_parser_is_read() -> None:
    assert {"crawl", "resume", "recrawl", "stats", "query", "search", "export"} <= set(_commands())


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert re.search(rf"^crawler {re.escape(command)}\b", README, re.MULTILINE), command


@pytest.mark.parametrize(("command", "word"), _arguments())
def test_every_argument_is_documented_with_its_command(command: str, word: str) -> None:
    """Each option (and choice, and positional) is on a line that names its command."""
    token = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    assert any(token.search(line) for line in _usage_lines(command)), f"crawler {command} {word}"


@pytest.mark.parametrize("command", ["make crawl", "make test"])
def test_the_two_make_commands_are_in_the_readme(command: str) -> None:
    assert command in README


# -- pages and links ------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.MULTILINE)}


def _links() -> list[Any]:
    links = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", target):
                name = page.relative_to(ROOT)
                links.append(pytest.param(page, target, id=f"{name}→{target}"))
    return links


@pytest.mark.parametrize(("page", "target"), _links())
def test_every_relative_link_leads_to_a_file(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name}: {target}"
    if anchor and file.suffix == ".md":
        assert anchor in _anchors(file), f"{page.name}: {target}"


@pytest.mark.parametrize("page", DOC_PATHS, ids=lambda page: page.name)
def test_every_docs_page_is_linked_from_the_readme(page: Path) -> None:
    assert f"](docs/{page.name})" in README


def test_the_readme_is_a_short_door() -> None:
    assert len(README.encode("utf-8")) < README_LIMIT


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
