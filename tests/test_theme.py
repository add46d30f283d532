"""byok.css's custom properties: each declared one documented with its default, each
used one declared (a typo in a ``var()`` would silently drop the rule)."""

import re
from pathlib import Path

import pytest

import byok

CSS = (Path(byok.__file__).parent / "static" / "byok" / "byok.css").read_text()
DOCS = (Path(__file__).parents[1] / "docs" / "pages.md").read_text()


def declared():
    block = re.search(r":where\(:root\) \{(.*?)\}", CSS, flags=re.DOTALL).group(1)
    return dict(re.findall(r"(--byok-[a-z0-9-]+):\s*([^;]+);", block))


def documented():
    """Each row of the table under "## Theming": property names to their defaults."""
    section = DOCS.split("## Theming", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| `--byok-") and len(cells) == 3:
            names = re.findall(r"`(--byok-[a-z0-9-]+)`", cells[0])
            defaults = re.findall(r"`([^`]+)`", cells[1])
            assert len(names) == len(defaults), line
            rows.update(zip(names, defaults, strict=True))
    return rows


def test_the_defaults_are_the_only_declarations_and_weigh_nothing():
    assert declared()
    assert CSS.count("--byok-accent:") == 1  # nowhere else, or a host's :root would lose


@pytest.mark.parametrize("name", sorted(declared()))
def test_every_property_is_documented_with_its_default(name):
    assert documented().get(name) == declared()[name]


def test_nothing_documented_is_missing():
    assert set(documented()) == set(declared())


def test_every_property_used_is_declared():
    used = set(re.findall(r"var\((--byok-[a-z0-9-]+)\)", CSS))
    assert used == set(declared())
