"""The web console in a real browser (Debian's Chromium, driven by Playwright).

The doors over plain HTTP (sign-in, cookie, headers) are tests/api/test_api_console.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from real_daemon import Daemon, running_daemon, session_body

# Debian's package (make test installs it); Playwright's own browser download is not used.
CHROMIUM = os.environ.get("VMCTL_CHROMIUM", "/usr/bin/chromium")
# As headless Chromium runs on a machine with no network but loopback, and as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # any one thing the page is to show
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def problems() -> list[str]:
    """What the page logged as an error: each test ends with none it did not expect."""
    return []


@pytest.fixture
def page(browser: Browser, daemon: Daemon, problems: list[str]) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # A script error, or anything the policy blocked, is logged as an error.
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        yield opened
    finally:
        context.close()
        daemon.close_open_sessions()  # whatever the test made, even if it failed midway
    assert problems == []


def _sign_in(page: Page, daemon: Daemon) -> None:
    page.goto(f"{daemon.url}/?token={daemon.token}")
    expect(page).to_have_url(f"{daemon.url}/")  # the token left the address bar
    expect(page.locator("#daemon")).to_contain_text("ok")


def _create_session(page: Page, worktree: Path, template: str) -> None:
    page.fill("#template-name", template)
    page.fill("#worktree", str(worktree))
    page.click("#create button[type=submit]")
    expect(page.locator("#session-title")).to_contain_text("(ready)")


def _run(page: Page, code: str) -> None:
    expect(page.locator("#run")).to_be_enabled()
    page.fill("#code", code)
    page.press("#code", "Control+Enter")


def test_signing_in_keeps_the_token_out_of_the_page(page: Page, daemon: Daemon) -> None:
    assert daemon.token is not None
    _sign_in(page, daemon)
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert daemon.token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script of the page can read it


def test_a_session_made_run_streamed_cancelled_replayed_and_closed_in_the_page(
    page: Page, daemon: Daemon, tmp_path: Path
) -> None:
    worktree = tmp_path / "tree"
    worktree.mkdir()
    _sign_in(page, daemon)
    _create_session(page, worktree, "console-test")
    transcript = page.locator("#transcript")

    # What a session prints is text, never markup of the page.
    _run(page, "console.log('<img src=x onerror=\"document.title=1\">'); globalThis.n = 6 * 7")
    expect(transcript.locator(".value").last).to_have_text("42")
    expect(transcript).to_contain_text('<img src=x onerror="document.title=1">')
    assert transcript.locator("img").count() == 0
    assert page.title() == "vmctl"

    # Console lines appear as the execution runs, before it ends.
    wait = "await new Promise((resolve) => setTimeout(resolve, 300))"
    _run(page, f"for (let i = 0; i < 3; i++) console.log('line', i); {wait}; 'done'")
    expect(transcript).to_contain_text("line 2")
    expect(transcript.locator(".value").last).to_have_text("done")

    _run(page, "while (true) {}")
    expect(page.locator("#cancel")).to_be_enabled()
    page.click("#cancel")
    expect(page.locator("#status")).to_contain_text("ended cancelled")

    page.click("#replay")
    expect(page.locator("#status")).to_contain_text(re.compile(r"\d+ replayed"))
    _run(page, "n")
    expect(transcript.locator(".value").last).to_have_text("42")

    page.click("#close")
    expect(page.locator("#status")).to_contain_text("is closed")
    expect(page.locator("#sessions li")).to_have_count(0)


def test_opening_a_session_shows_what_its_executions_printed(
    page: Page, daemon: Daemon, tmp_path: Path
) -> None:
    worktree = tmp_path / "tree"
    worktree.mkdir()
    with daemon.client() as api:  # a session an agent made, before the page was opened
        template = api.post("/templates", json={"name": "console-history"}).json()
        body = session_body(template["id"], worktree)
        session = api.post("/sessions", json=body).json()
        code = "console.log('from before'); console.warn('careful'); 'the value'"
        assert api.post("/executions/repl", json={"session_id": session["id"], "input": code})
    _sign_in(page, daemon)
    page.click(f"#sessions li[data-id='{session['id']}']")
    transcript = page.locator("#transcript")
    expect(transcript.locator(".input")).to_have_text(code)
    expect(transcript.locator(".console")).to_have_text("from before")
    expect(transcript.locator(".warn")).to_have_text("careful")
    expect(transcript.locator(".value")).to_have_text("the value")


def test_an_error_of_the_api_is_shown_not_thrown(
    page: Page, daemon: Daemon, problems: list[str]
) -> None:
    _sign_in(page, daemon)
    page.fill("#template-name", "console-outside")
    page.fill("#worktree", "/proc/self")
    page.click("#create button[type=submit]")
    expect(page.locator("#status")).to_contain_text("INVALID_PATH")
    expect(page.locator("#status")).to_have_class("bad")
    # The browser's own note of the 422; nothing else went wrong.
    assert [problem for problem in problems if "422" not in problem] == []
    problems.clear()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """Auth on, as by default: the page signs in with the token."""
    with running_daemon(tmp_path_factory.mktemp("home")) as running:
        yield running
