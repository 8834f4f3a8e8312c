"""docs/operators.md and CHANGELOG.md name only what exists: the shipped files and units, the
version of pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from tests.deploy.units import REPO

OPERATORS = (REPO / "docs" / "operators.md").read_text()
CHANGELOG = (REPO / "CHANGELOG.md").read_text()


def test_every_shipped_file_the_guide_names_exists_and_every_one_is_named() -> None:
    named = set(re.findall(r"deploy/[a-z]+/[A-Za-z0-9_.*-]+", OPERATORS))
    assert [p for p in sorted(named) if not list(REPO.glob(p))] == []
    shipped = sorted(p.name for p in (REPO / "deploy").rglob("*") if p.is_file())
    assert [name for name in shipped if name not in OPERATORS] == []


def test_the_changelog_has_unreleased_and_the_current_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    headings = re.findall(r"^## \[([^\]]+)\]", CHANGELOG, re.M)
    assert headings[0] == "Unreleased"
    assert version in headings
    for section in re.split(r"^## ", CHANGELOG, flags=re.M)[1:]:
        kinds = re.findall(r"^### (.+)$", section, re.M)
        assert set(kinds) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
