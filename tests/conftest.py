"""Fixtures shared across test folders."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def playwright_driver():
    """One sync Playwright per test module.

    Sync Playwright drives its own event loop in the main thread while it is alive: a second
    instance fails ("Sync API inside the asyncio loop"), and so does every ``asyncio.run`` in
    tests that run meanwhile. So browser tests share this one, and it stops when their module
    ends, before other modules' tests run.
    """
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()
