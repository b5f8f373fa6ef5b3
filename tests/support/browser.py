"""A real headless Chromium for the console's browser tests: Debian's ``chromium`` (``make`` installs
it with apt), driven by Playwright for Python through ``executable_path`` (never ``playwright
install``, which downloads a browser build of its own). Helpers: axe-core checks and screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE = ROOT / "tools" / "console-assets" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "console"
# The README's two images (committed): written only when asked (`make screenshots` sets this), so a
# normal test run never dirties the tree.
README_IMAGES = ROOT / "docs" / "images"
README_IMAGES_ENV = "README_SCREENSHOTS"
# Root cannot use Chromium's sandbox; the other two keep it from phoning home during a test.
ROOT_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# What axe-core checks: WCAG 2.0, 2.1 and 2.2 at levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def missing_tools() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (make installs Debian's chromium)"
    if not AXE.exists():
        return f"{AXE} is missing (make installs tools/console-assets with npm ci)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (make installs requirements/dev.txt)"
    return None


def launch_args() -> list[str]:
    return ROOT_ARGS if os.geteuid() == 0 else ["--disable-background-networking", "--disable-component-update"]


async def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG A/AA violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_TAGS,
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


async def screenshots(page: Any, name: str) -> list[Path]:
    """The page at desktop and phone width, full length, under test-artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    saved = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        path = ARTIFACTS / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    if before:
        await page.set_viewport_size(before)
    return saved


async def readme_image(page: Any, name: str) -> Path | None:
    """The page's first screen at desktop width as docs/images/console-<name>.png, the README's
    image, when README_SCREENSHOTS=1; otherwise nothing (None)."""
    if os.environ.get(README_IMAGES_ENV) != "1":
        return None
    before = page.viewport_size
    await page.set_viewport_size(DESKTOP)
    path = README_IMAGES / f"console-{name}.png"
    await page.screenshot(path=str(path))
    if before:
        await page.set_viewport_size(before)
    return path
