"""Refresh the bot data the click verdict ships (issue 21).

``python -m advocacy_dev.botlists isbot`` writes isbot's pattern, from the npm package pinned in
tests/corpora/package.json and installed by ``make install`` into tests/corpora/node_modules, to
services/sharing/advocacy_sharing/adapters/data/isbot.json. To move to a newer isbot: change the
version in package.json, ``npm install --prefix tests/corpora``, run this, run the corpus harness
(``python -m bench verdicts``) and commit the three files with the new figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = ROOT / "tests" / "corpora" / "node_modules"
ISBOT_DATA = ROOT / "services" / "sharing" / "advocacy_sharing" / "adapters" / "data" / "isbot.json"


def isbot() -> dict[str, str]:
    node = shutil.which("node")
    pkg = NODE_MODULES / "isbot"
    if node is None or not pkg.exists():
        raise SystemExit("needs node and the npm corpora: make install")
    version = json.loads((pkg / "package.json").read_text())["version"]
    out = subprocess.run(
        [node, "-e", "const p = require(process.argv[1]).getPattern(); process.stdout.write(p.source)", str(pkg)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {
        "source": "npm isbot (Unlicense), getPattern(): refreshed by `python -m advocacy_dev.botlists isbot`",
        "package": "isbot",
        "version": version,
        "flags": "i",
        "pattern": out.stdout,
    }


def main(argv: list[str] | None = None) -> None:
    what = (argv if argv is not None else sys.argv[1:]) or ["isbot"]
    if "isbot" in what:
        data = isbot()
        ISBOT_DATA.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{ISBOT_DATA.relative_to(ROOT)}: isbot {data['version']}, {len(data['pattern'])} characters")


if __name__ == "__main__":
    main()
