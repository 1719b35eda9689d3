"""The console's browser tests fail in CI when Chromium or its driver is missing, and skip elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import browser


def test_a_missing_browser_fails_the_run_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "CHROMEDRIVER", tmp_path / "no-chromedriver")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"CI: the console's browser tests need .*no-chromedriver.*apt-get install"
    ):
        browser.require_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        browser.require_browser()
