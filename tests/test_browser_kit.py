"""The test kit's browser (tests/kit/browser.py) sees what a page renders and what it logs."""

from __future__ import annotations

from pathlib import Path

from kit.browser import chromium, severe_console
from selenium.webdriver.common.by import By

PAGE = """<!doctype html><meta charset="utf-8"><title>kit</title>
<p id="out"></p>
<script>
document.getElementById("out").textContent = "drawn by " + "script";
console.error("a planted error");
</script>"""


def test_the_browser_runs_a_page_and_reports_its_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    with chromium() as browser:
        browser.get(page.as_uri())
        assert browser.find_element(By.ID, "out").text == "drawn by script"
        errors = severe_console(browser)
    assert len(errors) == 1
    assert "a planted error" in errors[0]["message"]
