"""Browser tests: Playwright driving Debian's Chromium against a real Daphne that serves the test
database (websockets included, which pytest-django's WSGI live_server cannot do).

A missing browser is a failure, not a skip, unless WORKBENCH_SKIP_BROWSER=1 is set on purpose."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from conftest import PASSWORD
from tests import servers

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop running in this thread; the ORM calls our tests
    make between browser steps are still ordinary synchronous code. Only for these tests, and
    never passed on to the Daphne under test."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    skip = os.environ.get("WORKBENCH_SKIP_BROWSER") == "1"
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if skip:
                item.add_marker(pytest.mark.skip(reason="WORKBENCH_SKIP_BROWSER=1"))


@pytest.fixture(scope="session")
def daphne_mail_dir(tmp_path_factory) -> Path:
    """Where the Daphne under test writes the emails it sends (one file per connection)."""
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="session")
def live_server_url(
    django_db_setup, django_db_blocker, tmp_path_factory, fake_provider_server, daphne_mail_dir
):
    """Daphne in a subprocess, on the test database, for the whole session. Its egress guard lets
    through the session's fake provider server (on loopback), as `manage.py fakeprovider` would
    be allowed in a local demo."""
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    env = servers.daphne_env(
        WORKBENCH_EGRESS_ALLOW=f"localhost:11434,127.0.0.1:{fake_provider_server.port}",
        WORKBENCH_TEST_MAIL_DIR=str(daphne_mail_dir),
    )
    process, port = servers.start_daphne(env, log)
    yield f"http://127.0.0.1:{port}"
    servers.stop(process)
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    if errors:  # Server errors show up in the test output even when the page hid them.
        print("Daphne logged errors:\n" + "\n".join(errors))
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


# Package scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would stop pytest-asyncio from running async tests elsewhere in the session.
@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install it (apt-get install chromium) or set "
            "WORKBENCH_SKIP_BROWSER=1 to skip browser tests on purpose."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server_url, transactional_db):
    """A fresh browser context. Console errors (CSP violations included) fail the test."""
    context = browser.new_context(base_url=live_server_url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    yield page
    context.close()
    # A page answered with a 4xx the test meant to get (not found, forbidden, throttled) is
    # logged by the browser as a failed resource; anything else is a real error.
    expected = ("status of 404", "status of 403", "status of 429")
    unexpected = [e for e in errors if not any(status in e for status in expected)]
    assert not unexpected, f"Browser console errors: {unexpected}"


@pytest.fixture
def screenshot():
    """`screenshot(page, "name")` saves artifacts/screenshots/<name>.png (CI keeps them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{name}.png"
        # caret="initial": Playwright hides the caret by injecting a <style>; an htmx swap after
        # that logs CSP "inline style" errors from htmx (seen as issue 9 bug 21), which are the
        # screenshot's, not the app's.
        page.screenshot(path=str(path), full_page=full_page, caret="initial")
        return path

    return take


@pytest.fixture
def login():
    def do(page, user, password: str = PASSWORD):
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)

    return do


@pytest.fixture
def both_widths(screenshot):
    """`both_widths(page, name)`: the whole page at 1280 and at 390 px wide."""

    def take(page, name: str) -> None:
        size = page.viewport_size
        for width, height in ((1280, 800), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(50)  # one layout and paint at the new width
            screenshot(page, f"{name}-{width}")
        page.set_viewport_size(size)

    return take


@pytest.fixture
def pick_model():
    """`pick_model(page, "gpt-4o fake b")`: choose the one model the words find in the page's
    model picker (the combobox over the native select), from the keyboard."""
    from playwright.sync_api import expect

    def pick(page, words: str) -> None:
        # Until picker.js has run, "Model" names the native select: an action would wait on it.
        expect(page.locator("select[data-picker]")).to_be_hidden()
        box = page.get_by_role("combobox", name="Model")
        box.click()  # opens the list with the current text selected: typing replaces it
        page.keyboard.type(words)
        expect(page.get_by_role("listbox").get_by_role("option")).to_have_count(1)
        page.keyboard.press("Enter")

    return pick


@pytest.fixture
def sent_mail(live_server_url, daphne_mail_dir):
    """`sent_mail()` → the text of every email the Daphne under test sent so far."""

    def read() -> str:
        import quopri

        raw = "\n".join(path.read_text() for path in sorted(daphne_mail_dir.glob("*.log")))
        return quopri.decodestring(raw.encode()).decode()

    return read
