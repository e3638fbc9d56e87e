"""The language switch in a real browser: English by default for an English browser, 简体中文
after a click in the sidebar, kept by a reload and by moving to another page (``?lang=zh`` in
the URL), and Chinese from the start for a browser whose language is Chinese.
"""

from __future__ import annotations

import shutil

import pytest

from browser_utils import ARTIFACTS, launch, require_browser, start_server, stop_server, wait_for, wait_idle
from transfer_core.i18n import _, use_language

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path):
    require_browser()
    proc, url = start_server(tmp_path)
    yield url, tmp_path
    stop_server(proc)


def _tab(browser, url: str, locale: str):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, locale=locale)
    ctx.set_default_timeout(180_000)
    page = ctx.new_page()
    page.goto(url, wait_until="domcontentloaded")
    wait_idle(page)
    return page


def _url(page) -> str:
    """The address bar now (``page.url`` is only refreshed while playwright talks to the page)."""
    return page.evaluate("window.location.href")


def _nav(page) -> str:
    return page.locator('[data-testid="stSidebarNav"]').inner_text()


def test_switch_to_chinese_survives_reload_and_page_change(server):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    with use_language("zh"):
        train_zh, data_zh = _("Train"), _("Data")
    assert train_zh != "Train"
    with sync_playwright() as pw:
        browser = launch(pw)
        page = None
        try:
            page = _tab(browser, url, "en-US")
            wait_for(lambda: "Train" in _nav(page), 120, "the English menu")
            assert "lang=en" in _url(page)
            page.locator('[data-testid="stSidebar"]').get_by_text("简体中文", exact=True).click()
            wait_for(lambda: train_zh in _nav(page) and "lang=zh" in _url(page), 120, "the Chinese menu and ?lang=zh")
            page.reload(wait_until="domcontentloaded")
            wait_idle(page)
            wait_for(lambda: train_zh in _nav(page), 120, "Chinese after a reload")
            assert "Train" not in _nav(page) and "lang=zh" in _url(page)
            page.locator('[data-testid="stSidebarNav"]').get_by_text(data_zh, exact=True).click()
            wait_for(lambda: "/data" in _url(page) and "lang=zh" in _url(page), 120, "the Data page, still ?lang=zh")
            wait_idle(page)
            assert train_zh in _nav(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "e2e_i18n_data_zh.png"))
            page.context.close()

            page = _tab(browser, url, "zh-CN")  # no ?lang: the browser's language decides
            wait_for(lambda: train_zh in _nav(page) and "lang=zh" in _url(page), 120, "Chinese for a Chinese browser")
            page.context.close()
        except BaseException:
            if page is not None and not page.is_closed():
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "e2e_i18n_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_i18n_server.log")
            raise
        finally:
            browser.close()
