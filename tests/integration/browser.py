"""A real headless Chromium for the console's tests: Debian's chromium and chromium-driver, Selenium.

In CI (``CI`` set) a missing browser fails the run; elsewhere the browser tests are skipped with
the command that installs it. Selenium Manager is never used (the driver's path is given), and
Chromium's background networking is off, so a run makes no request beyond loopback.

Screenshots of every page go to ``$CROSSWAY_SCREENSHOTS`` when set (a CI artifacts folder), else
to a temporary folder whose path the run prints.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation"

# Chromium's own switches that stop it phoning home: no component or safe-browsing updates, no
# sync, no metrics, no field trials, no translate or optimization-hint fetches.
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
)


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = f"the console's browser tests need {' and '.join(missing)}: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


def start_driver(downloads: Path) -> Any:
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", *QUIET_FLAGS):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("CROSSWAY_SCREENSHOTS")
    folder = Path(named) if named else tmp_path_factory.mktemp("console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {folder}")
    return folder


class Browser:
    """The driver plus what every console test does with it: visit, wait, screenshot, check the log."""

    def __init__(self, driver: Any, base: str, shots: Path, downloads: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base = base
        self.shots = shots
        self.downloads = downloads
        self.wait = WebDriverWait(driver, 15, poll_frequency=0.05)

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, css))).click()

    def fill(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def until_path(self, path: str) -> None:
        from selenium.common.exceptions import TimeoutException

        try:
            self.wait.until(lambda d: d.current_url.split("?")[0] == self.base + path)
        except TimeoutException:
            body = self.driver.find_element("css selector", "body").text[:500]
            raise AssertionError(f"expected {path}, still at {self.driver.current_url}: {body!r}") from None

    def until_text(self, css: str, text: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def htmx_ready(self) -> None:
        self.wait.until(lambda d: d.execute_script("return !!window.htmx"))

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page (the window grows to the page's height for it)."""
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(1400, min(max(1000, height + 100), 6000))
        path = self.shots / f"{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path

    def severe(self) -> list[dict[str, Any]]:
        """SEVERE browser log entries since the last call (CSP violations, script errors, 404s)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def sign_in(self, who: str) -> None:
        """Through the console's sign-in and the demo provider, as the user with role ``who``."""
        self.driver.delete_all_cookies()
        self.get("/signin")
        self.click("#signin")
        self.click(f"#as-{who}")
        self.wait.until(
            lambda d: (
                "/signin" not in d.current_url and "/demo-idp/" not in d.current_url and "/oidc/" not in d.current_url
            )
        )
        self.find("#user-name")

    def sign_out(self) -> None:
        self.click("header .who button")
        self.until_path("/signin")

    def download(self, before: set[str], timeout: float = 15.0) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name not in before and not p.name.endswith(".crdownload")]
            if done:
                return done[0]
            time.sleep(0.1)
        raise AssertionError(f"no download arrived in {self.downloads}")

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}
