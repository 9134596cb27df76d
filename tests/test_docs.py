"""The documentation: the site builds in strict mode (a broken link, a missing page, an API reference
that does not resolve fails), every page is in the navigation, and the README stays a front page."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").read_text().count("Two commands") >= 1  # the README is the home page
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("SpikingNetwork") > 3


def test_every_page_is_in_the_navigation_and_the_readme_is_short():
    import yaml

    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))
    nav = {next(iter(item.values())) for item in cfg["nav"]}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages == nav, (pages - nav, nav - pages)
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260
