"""A real browser for the tests: Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver (the two come from one Debian source, so their versions always match;
`make browser-deps` installs them).

The browser reaches loopback and `file://` only: every other host name resolves to nothing
(`--host-resolver-rules`), and Chromium's own background traffic (updates, sync, metrics,
safe browsing) is switched off, so a page that names an outside URL fails to load it rather
than fetching it.

    with chromium() as browser:
        browser.get(url)
        text = browser.find_element(By.ID, "x").text
        assert severe_console(browser) == []

Resource handling: `chromium()` is a context manager; the browser and its driver end on exit.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

OFFLINE_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


def chromium_paths() -> tuple[str, str] | None:
    """The Chromium binary and its chromedriver, if both are installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium window of `width` x `height` CSS pixels, for the block."""
    paths = chromium_paths()
    if paths is None:
        pytest.fail("Chromium and chromedriver are not installed: run `make browser-deps`")
    binary, driver = paths
    options = Options()
    options.binary_location = binary
    for flag in (*OFFLINE_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = WebDriver(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


def severe_console(browser: WebDriver) -> list[dict[str, Any]]:
    """The console's errors since the last call (uncaught exceptions, failed loads, CSP)."""
    entries: list[dict[str, Any]] = browser.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry.get("level") == "SEVERE"]


def screenshot(browser: WebDriver, path: Path) -> Path:
    """The whole page as a PNG at `path` (the window grown to the page's height first)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.execute_script("return window.innerWidth")
    browser.set_window_size(width, min(int(height) + 100, 6000))
    browser.save_screenshot(str(path))
    return path
