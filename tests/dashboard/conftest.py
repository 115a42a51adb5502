"""Browser tests: the dashboard served by uvicorn over the API's test database (tests/api/conftest.py's day of
runs), looked at by headless Chromium. Screenshots of every page go to .artifacts/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, api, api_env, broker  # noqa: F401  (fixtures shared with the API tests)
from tests.support.browser import browser_available, chromium, serving


@pytest.fixture
def site(api: Api) -> Iterator[tuple[Api, str]]:  # noqa: F811
    """The API test app served over HTTP: (the Api helper, the base URL)."""
    with serving(api.app) as base:
        yield api, base


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    if not browser_available():
        pytest.fail("Debian's chromium and chromium-driver are needed (.ci/run installs them: "
                    "apt-get install -y chromium chromium-driver)")
    with chromium() as d:
        yield d


@pytest.fixture(autouse=True)
def _fresh_browser(request: pytest.FixtureRequest) -> None:
    """Each test starts signed out, at the desktop width."""
    if "driver" in request.fixturenames:
        d = request.getfixturevalue("driver")
        d.get("about:blank")  # the last test's page, whose server is gone, stops reconnecting
        d.get_log("browser")  # and what it logged meanwhile is not this test's
        d.delete_all_cookies()
        d.set_window_size(1280, 900)
