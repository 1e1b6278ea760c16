"""The headless-Chromium tab that checks reports: script errors kept, a page whose own
data fetch failed reloaded (real Chromium, local ``file://`` pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

# Fails its first load the way the Allure 3 app does when a fetch() of its data fails,
# and renders on the next load (sessionStorage survives a reload of the same tab).
FLAKY_APP = """<!doctype html><html><body><div id="app">loading</div><script>
if (!sessionStorage.getItem("loaded")) {
  sessionStorage.setItem("loaded", "1");
  console.error("Failed to fetch tree filters data:", new TypeError("Failed to fetch"));
} else {
  document.getElementById("app").textContent = "drill overview";
}
</script></body></html>"""


@pytest.fixture
def chromium(installed_tool: Any) -> Path:
    from chaosrec.adapters.tools import find_chromium

    return installed_tool(find_chromium, "chromium")


def test_a_page_whose_data_fetch_failed_is_reloaded(tmp_path: Path, chromium: Path) -> None:
    from chaosrec.reporting.browser import Tab

    page_file = tmp_path / "index.html"
    page_file.write_text(FLAKY_APP)
    with Tab(chromium, timeout_s=20) as tab:
        page = tab.goto(page_file.as_uri(), wait_for=("drill overview",))
    assert "drill overview" in page.text
    assert page.reloads == 1
    assert page.errors == []  # the reloaded document logged nothing


def test_without_reloads_the_failed_fetch_is_reported(tmp_path: Path, chromium: Path) -> None:
    from chaosrec.reporting.browser import Tab

    page_file = tmp_path / "index.html"
    page_file.write_text(FLAKY_APP)
    with Tab(chromium, timeout_s=2, reloads=0) as tab:
        page = tab.goto(page_file.as_uri(), wait_for=("drill overview",))
    assert "drill overview" not in page.text and page.reloads == 0
    assert len(page.errors) == 1 and "Failed to fetch tree filters data" in page.errors[0]
