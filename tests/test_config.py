from __future__ import annotations

from pathlib import Path

import pytest
from kit import run_cli, run_in_process

from crawler.config import Config
from crawler.errors import ConfigError

GOOD = 'seeds = ["https://example.org/"]'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_the_spec(tmp_path: Path) -> None:
    config = Config.load(_write(tmp_path, f"[crawl]\n{GOOD}\n"))
    assert config.crawl.seeds == ("https://example.org/",)
    assert config.crawl.max_depth == 10
    assert config.crawl.concurrency == 16
    assert config.crawl.max_url_length == 2048
    assert config.politeness.delay == 1.0
    assert config.politeness.per_host_concurrency == 1
    assert config.politeness.obey_robots is True
    assert config.politeness.robots_token == "crawler"
    assert config.fetch.timeout == 30
    assert config.fetch.max_bytes == 5_000_000
    assert config.fetch.retries == 2
    assert config.fetch.resolve == {}
    assert config.storage.path == tmp_path / "crawl.db"
    assert config.storage.store_body is True


def test_every_key_is_read(tmp_path: Path) -> None:
    text = f"""
[crawl]
{GOOD}
allowed_domains = ["example.org"]
include = ["/docs/"]
exclude = ["\\\\.pdf$"]
max_depth = 3
max_pages = 100
max_pages_per_host = 50
max_duration = 60.5
max_url_length = 500
concurrency = 4
[politeness]
user_agent = "MyBot/1.0"
delay = 0.5
per_host_concurrency = 2
obey_robots = false
max_crawl_delay = 10
robots_ttl = 3600
follow_nofollow = true
[fetch]
timeout = 5
connect_timeout = 2.5
max_bytes = 1000
max_redirects = 3
retries = 1
resolve = {{ "Example.org" = "127.0.0.1" }}
[storage]
path = "/tmp/x.db"
store_body = false
"""
    config = Config.load(_write(tmp_path, text))
    assert config.crawl.exclude == (r"\.pdf$",)
    assert config.crawl.max_duration == 60.5
    assert config.politeness.robots_token == "mybot"
    assert config.politeness.follow_nofollow is True
    assert config.fetch.connect_timeout == 2.5
    assert config.fetch.resolve == {"example.org": "127.0.0.1"}
    assert config.storage.path == Path("/tmp/x.db")
    assert config.storage.store_body is False
    assert config.politeness.max_crawl_delay == 10.0  # an int is accepted for a float key


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        pytest.param(f"[crawl]\n{GOOD}\nspeed = 3", "crawl.speed", "unknown key", id="unknown"),
        pytest.param(f"[crawl]\n{GOOD}\n[extra]\na = 1", "extra", "unknown section", id="section"),
        pytest.param(
            f'[crawl]\n{GOOD}\nmax_depth = "3"', "crawl.max_depth", "whole number", id="type"
        ),
        pytest.param(f"[crawl]\n{GOOD}\nmax_depth = 1.5", "crawl.max_depth", "whole", id="int"),
        pytest.param(f"[crawl]\n{GOOD}\nmax_pages = -1", "crawl.max_pages", ">= 0", id="neg"),
        pytest.param(
            f"[crawl]\n{GOOD}\n[politeness]\nobey_robots = 1",
            "politeness.obey_robots",
            "true or false",
            id="bool",
        ),
        pytest.param(f'[crawl]\n{GOOD}\nexclude = ["("]', "crawl.exclude", "bad regex", id="re"),
        pytest.param(
            '[crawl]\nseeds = ["ftp://example.org/"]', "crawl.seeds", "http or https", id="ftp"
        ),
        pytest.param('[crawl]\nseeds = ["not a url"]', "crawl.seeds", "http or https", id="junk"),
        pytest.param("[crawl]\nseeds = []", "crawl.seeds", "missing", id="empty-seeds"),
        pytest.param("[crawl]\nmax_depth = 2", "crawl.seeds", "missing", id="no-seeds"),
        pytest.param("", "crawl.seeds", "missing", id="empty-file"),
        pytest.param('[crawl]\nseeds = "http://a/"', "crawl.seeds", "list of strings", id="str"),
        pytest.param(f"[crawl]\n{GOOD}\nconcurrency = 0", "crawl.concurrency", "at least", id="c0"),
        pytest.param("crawl = 3", "crawl", "must be a table", id="not-table"),
        pytest.param("[crawl\n", "not valid TOML", "", id="toml"),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert key in message
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        Config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"[crawl]\n{GOOD}\nbogus = 1", id="unknown-key"),
        pytest.param('[crawl]\nseeds = ["mailto:x@y"]', id="bad-seed"),
        pytest.param(f'[crawl]\n{GOOD}\ninclude = ["[a-"]', id="bad-regex"),
        pytest.param("[crawl]\n", id="no-seeds"),
    ],
)
def test_cli_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = _write(tmp_path, text)
    ran = run_in_process(capsys, "crawl", str(path), "--quiet")
    assert ran.code == 2
    err = ran.err
    assert err.count("\n") == 1
    assert str(path) in err
    assert not (tmp_path / "crawl.db").exists()  # nothing was started


def test_cli_bad_config_in_a_real_process(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    ran = run_cli("crawl", str(missing), seconds=30)
    assert ran.code == 2
    assert ran.err.strip() == f"crawler: error: {missing}: no such config file"
    assert "Traceback" not in ran.err
