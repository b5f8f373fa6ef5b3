"""The README's two console images are written by the browser test only when asked
(README_SCREENSHOTS=1, `make screenshots`): a normal test run never dirties docs/images/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import browser


class Page:
    """What readme_image uses of a Playwright page: its viewport and a screenshot."""

    def __init__(self) -> None:
        self.viewport_size: dict[str, int] | None = dict(browser.PHONE)
        self.shots: list[tuple[str, dict[str, int] | None]] = []

    async def set_viewport_size(self, size: dict[str, int]) -> None:
        self.viewport_size = dict(size)

    async def screenshot(self, **kwargs: Any) -> None:
        self.shots.append((str(kwargs["path"]), self.viewport_size))


async def test_nothing_is_written_unless_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser, "README_IMAGES", tmp_path)
    monkeypatch.delenv(browser.README_IMAGES_ENV, raising=False)
    page = Page()
    assert await browser.readme_image(page, "board") is None
    monkeypatch.setenv(browser.README_IMAGES_ENV, "0")
    assert await browser.readme_image(page, "board") is None
    assert page.shots == []


async def test_asked_it_writes_the_first_screen_at_desktop_width(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "README_IMAGES", tmp_path)
    monkeypatch.setenv(browser.README_IMAGES_ENV, "1")
    page = Page()
    assert await browser.readme_image(page, "wall") == tmp_path / "console-wall.png"
    assert page.shots == [(str(tmp_path / "console-wall.png"), browser.DESKTOP)]
    assert page.viewport_size == browser.PHONE  # put back as it was


def test_the_readme_shows_the_images_the_test_writes() -> None:
    head = (browser.ROOT / "README.md").read_text().split("\n## ", 1)[0]
    for name in ("board", "wall"):
        image = browser.README_IMAGES / f"console-{name}.png"
        assert image.stat().st_size > 0
        assert f'src="{image.relative_to(browser.ROOT)}"' in head, name
