"""Browser tests: PyPI's playwright driving Debian's Chromium headless (never `playwright install`).

Chromium is installed with apt when /usr/bin/chromium is missing; where that cannot be done (no root, no
network) or playwright is not installed, the browser tests are skipped with the reason.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _ensure_chromium() -> str:
    """'' when Chromium is there (installing it if needed), else why it cannot be."""
    if Path(CHROMIUM).exists():
        return ""
    if shutil.which("apt-get") is None:
        return "Chromium is missing at /usr/bin/chromium and apt-get is not available to install it"
    if os.geteuid() != 0:
        return "Chromium is missing at /usr/bin/chromium; install it with `sudo apt-get install -y chromium`"
    result = subprocess.run(
        ["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0 or not Path(CHROMIUM).exists():
        return f"`apt-get install -y chromium` failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}"
    return ""


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -r requirements.txt)")
    problem = _ensure_chromium()
    if problem:
        pytest.skip(problem)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    # The admin's navigation sidebar closed, so the screenshots show the screens themselves.
    context.add_init_script("window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


STAFF_PASSWORD = "browser-test-pw"


@pytest.fixture
def staff_admin(page, live_server):
    """The admin's address, with the page signed in as a superuser named staff."""
    User.objects.create_superuser("staff", "staff@example.com", STAFF_PASSWORD)
    admin = f"{live_server.url}/admin"
    page.goto(f"{admin}/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{admin}/")
    return admin
