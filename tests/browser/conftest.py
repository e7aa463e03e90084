"""Browser tests: Debian's Chromium driven by Playwright against the app on a real socket.

``make test`` installs ``chromium`` with apt where it is missing; axe-core comes from the npm
registry into ``.cache/axe`` the first time. Each main page is checked at 360 px wide (no
horizontal scrolling), with axe-core (no serious or critical violation), and photographed
into ``docs/screenshots/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.servers import threaded_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_VERSION = "4.11.0"
SCREENSHOTS = ROOT / "docs" / "screenshots"
NARROW = {"width": 360, "height": 740}
WIDE = {"width": 1100, "height": 800}


def npm_file(package: str, version: str, member: str) -> Path:
    """One file of an npm package, fetched from the registry into ``.cache`` the first time."""
    folder = ROOT / ".cache" / package / f"{package}-{version}"
    path = folder / member.removeprefix("package/")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"{package}@{version}", "--silent"], cwd=folder, check=True, timeout=120
        )
        subprocess.run(["tar", "-xzf", f"{package}-{version}.tgz", member], cwd=folder, check=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        (folder / member).rename(path)
    return path


def _axe_script() -> Path:
    return npm_file("axe-core", AXE_VERSION, "package/axe.min.js")


@pytest.fixture(scope="session")
def live_url(app):
    """The app on 127.0.0.1 (a free port), served by threads for the whole session."""
    with threaded_server(app) as url:
        yield url


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (make test installs it with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_url):
    # bypass_csp lets the test inject axe-core; the app's own pages never need it.
    context = chromium.new_context(base_url=live_url, viewport=WIDE, bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, email: str) -> None:
    """Through the login form, as a person would (the test users share one password)."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def check_page(page, name: str) -> None:
    """360 px without horizontal scrolling, no serious/critical axe violation, a screenshot."""
    page.set_viewport_size(NARROW)
    # Measured once the narrow layout has been drawn (two frames), not while a busy machine is
    # still laying out the wide one.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{name}: {width}px wide at 360px"
    page.add_script_tag(path=str(_axe_script()))
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: " + "; ".join(serious)
    page.set_viewport_size(WIDE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
