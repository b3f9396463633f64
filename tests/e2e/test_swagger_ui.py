"""The Swagger UI at ``/`` calls an API: expand it, "Try it out", fill the body, "Execute".

Drives headless Chromium over the DevTools protocol against a production ``bentolite serve``.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from .cdp import Browser, find_chromium
from .prod_helpers import Command, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None,
                       reason="chromium is not installed (scripts/test installs it as root)"),
]

# The block of the /shout operation, found by its path as Swagger UI renders it.
_BLOCK = """[...document.querySelectorAll('.opblock')].find(
    b => b.querySelector('.opblock-summary-path')?.innerText.trim() === '/shout')"""

# A React-controlled textarea ignores a plain `.value = ...`: use the native setter and
# dispatch the 'input' event React listens to.
_FILL_BODY = """(() => {
  const area = (%s).querySelector('textarea.body-param__text');
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  setter.call(area, %s);
  area.dispatchEvent(new Event('input', {bubbles: true}));
  return area.value;
})()"""


async def _click_until(browser: Browser, selector: str, condition: str,
                       attempts: int = 20) -> None:
    """Click ``selector`` in the block until ``condition`` holds (the first render of the
    page may still replace the element, dropping an early click)."""
    for _ in range(attempts):
        await browser.evaluate(f"({_BLOCK}).querySelector({selector!r})?.click()")
        try:
            await browser.wait_for(condition, timeout_s=1.0)
            return
        except TimeoutError:
            continue
    raise AssertionError(f"clicking {selector} never led to: {condition}")


async def _try_it_out(url: str, text: str) -> str:
    async with Browser(find_chromium() or "") as browser:
        await browser.navigate(url + "/")
        await browser.wait_for(f"!!({_BLOCK})", timeout_s=60)
        await _click_until(browser, ".opblock-summary-control",
                           f"!!({_BLOCK}).querySelector('.try-out__btn')")
        await browser.evaluate(f"({_BLOCK}).querySelector('.try-out__btn').click()")
        await browser.wait_for(f"!!({_BLOCK}).querySelector('textarea.body-param__text')")
        assert await browser.evaluate(_FILL_BODY % (_BLOCK, json.dumps(text))) == text
        await browser.wait_for(f"!!({_BLOCK}).querySelector('button.execute')")
        await browser.evaluate(f"({_BLOCK}).querySelector('button.execute').click()")
        return await browser.wait_for(
            f"(({_BLOCK}).querySelector('.live-responses-table') || {{}}).innerText",
            timeout_s=60)


def test_swagger_ui_try_it_out_executes_an_api(tmp_path: Path) -> None:
    port = free_port()
    server = Command(["serve", "prod_svc:svc", "--host", "127.0.0.1", "--port", str(port),
                      "--api-workers", "1", "--working-dir", "."], tmp_path, port=port)
    try:
        server.wait_ready()
        live = asyncio.run(_try_it_out(server.url, "hello from swagger"))
        assert "200" in live, live
        assert "HELLO FROM SWAGGER" in live, live
        assert server.terminate() == 0, server.log()
    finally:
        server.close()
