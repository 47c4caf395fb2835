"""Fixtures shared across test folders."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def playwright_driver():
    """One sync Playwright for the whole run.

    Sync Playwright drives its own event loop in the main thread: a second instance started
    while another is alive fails ("Sync API inside the asyncio loop"), so every browser test
    (the widget harness and the JupyterLab suite) shares this one.
    """
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()
