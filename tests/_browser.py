"""Open a local HTML file in headless Chromium and report what happened.

Uses the system Chromium (Debian's ``/usr/bin/chromium``) through Playwright, so no
browser is downloaded. Every request the page makes is routed through a handler: the file
itself is served, anything else is recorded and aborted, so a test never touches the
network and can assert that a page is self-contained.

Use ``@requires_chromium`` on a test that calls :func:`open_in_chromium`; it skips with a
reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
VIEWPORT = {"width": 1366, "height": 900}


def chromium_path() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if chromium_path() is None:
        return "no chromium executable on PATH (Debian: apt-get install chromium)"
    return None


def _required() -> bool:
    """CI sets HEADROOM_REQUIRE_CHROMIUM=1 (after installing Debian's chromium): there a
    missing browser fails the browser tests instead of skipping them."""
    return os.environ.get("HEADROOM_REQUIRE_CHROMIUM") == "1"


requires_chromium = pytest.mark.skipif(
    _missing() is not None and not _required(), reason=_missing() or ""
)


@dataclass(frozen=True, slots=True)
class PageReport:
    """What a page did while it loaded.

    ``console`` holds (type, text) pairs (``"error"``, ``"warning"``, ``"log"``, ...);
    ``requests`` every URL the page asked for, the file itself included;
    ``external_requests`` those that were neither the file nor a ``data:`` URL (routed ones
    are aborted);
    ``failed_requests`` (url, failure text) of requests that failed, aborted ones included.
    """

    title: str
    body_text: str
    console: tuple[tuple[str, str], ...]
    page_errors: tuple[str, ...]
    dialogs: tuple[tuple[str, str], ...]
    requests: tuple[str, ...]
    external_requests: tuple[str, ...]
    failed_requests: tuple[tuple[str, str], ...]

    def console_of(self, *types: str) -> tuple[tuple[str, str], ...]:
        """The console messages of the given types."""
        return tuple(m for m in self.console if m[0] in types)


def open_in_chromium(
    html_path: str | Path, screenshot_path: str | Path | None = None
) -> PageReport:
    """Load ``html_path`` in headless Chromium (1366x900), optionally save a full-page
    screenshot, and return what happened. Skips the calling test when Chromium or
    Playwright is missing."""
    reason = _missing()
    if reason is not None:
        if _required():
            pytest.fail(f"HEADROOM_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    url = Path(html_path).resolve().as_uri()
    console: list[tuple[str, str]] = []
    errors: list[str] = []
    dialogs: list[tuple[str, str]] = []
    requests: list[str] = []
    external: list[str] = []
    failed: list[tuple[str, str]] = []

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    def on_dialog(d: Any) -> None:
        dialogs.append((d.type, d.message))
        d.dismiss()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport=VIEWPORT, java_script_enabled=True)
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", on_dialog)
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append((r.url, str(r.failure))))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(300)  # let late console messages and requests arrive
            if screenshot_path is not None:
                page.screenshot(path=str(screenshot_path), full_page=True)
            title, body = page.title(), page.inner_text("body")
            context.close()
        finally:
            browser.close()
    others = [u for u in requests if u != url and not u.startswith("data:")]
    return PageReport(
        title=title,
        body_text=body,
        console=tuple(console),
        page_errors=tuple(errors),
        dialogs=tuple(dialogs),
        requests=tuple(requests),
        external_requests=tuple(dict.fromkeys(external + others)),
        failed_requests=tuple(failed),
    )
