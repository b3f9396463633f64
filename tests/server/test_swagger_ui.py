"""The Swagger UI at ``/`` renders in headless Chromium from local assets (no internet)."""
from __future__ import annotations

import asyncio
import sys

import pytest
from serve_helpers import HERE, Server

sys.path.insert(0, str(HERE.parent))  # tests/: the shared e2e browser driver
from e2e.cdp import Browser, find_chromium  # noqa: E402

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


# tests/e2e/cdp.py leaves chromium's stderr pipe open (reported to the lead).
def test_swagger_ui_lists_every_api(server: Server) -> None:
    async def render() -> list[str]:
        async with Browser(find_chromium() or "") as browser:
            await browser.navigate(server.url + "/")
            await browser.wait_for(
                "document.querySelectorAll('.opblock-summary-path').length >= 10", timeout_s=60)
            return await browser.evaluate(
                "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText)")

    paths = asyncio.run(render())
    assert {"/echo_text", "/custom/ctx", "/form", "/readyz", "/metrics"} <= set(paths)
