"""The documentation: every relative link resolves, and every key is documented exactly once.

The README is the front door and `docs/` holds the references. A link that points at a moved
file or a renamed heading is a dead end for a reader; a configuration or manifest key added to
the code but not to its reference table is a key nobody can find. The keys are read from the
code that accepts them (`stacks.config.ENV_KEYS`, the tuning block's `OWNERSHIP`,
`pipeline.dataset.manifest.MANIFEST_KEYS`), so a new key fails here until its row is written.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.dataset.manifest import MANIFEST_KEYS
from pipeline.settings.trust import OWNERSHIP
from stacks.config import ENV_KEYS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`]+)`")
CONFIG_HEADING = "# Configuration reference (`cdk.json` → `environments.<env>`)"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def table(page: Path, heading: str) -> list[list[str]]:
    """The cells of every row of the first table under `heading` (header rows left out)."""
    lines = page.read_text().splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.split("|")[1:-1]])
        elif rows:
            break
    assert len(rows) > 2, f"{page.name}: no table under {heading!r}"
    return rows[2:]


def keys_named(cells: list[str], *, tuning_prefix: bool) -> Counter[str]:
    """How many rows name each key. In the configuration table a cell that starts with `tuning.x`
    names tuning keys only (`tuning.a` / `b` is a and b of the tuning block); `tuning.ranges.<hp>`
    names `ranges`."""
    named: Counter[str] = Counter()
    for cell in cells:
        tokens = CODE.findall(cell)
        in_tuning = tuning_prefix and bool(tokens) and tokens[0].startswith("tuning.")
        for token in tokens:
            key = token.removeprefix("tuning.").split(".")[0].split(" ")[0]
            named[f"tuning.{key}" if in_tuning else key] += 1
    return named


def test_the_readme_is_a_front_door() -> None:
    # issue 20: "At most about 200 lines"; the references live in docs/.
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:: not ours to check offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            dead.append(f"{target}: no file {resolved.relative_to(ROOT) if ROOT in resolved.parents else resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            dead.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert dead == [], f"{page.name}: dead links {dead}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall((ROOT / "README.md").read_text())}
    assert {p for p in DOCS.glob("*.md")} - linked == set()


def test_every_configuration_key_is_documented_exactly_once() -> None:
    expected = {k for k in ENV_KEYS if k != "tuning"} | {f"tuning.{k}" for k in OWNERSHIP}
    named = keys_named([row[0] for row in table(DOCS / "configuration.md", CONFIG_HEADING)], tuning_prefix=True)
    assert {k for k in expected if named[k] != 1} == set(), "each key needs exactly one row"
    assert set(named) - expected == set(), "rows for keys the configuration does not accept"


def test_every_manifest_key_is_documented_exactly_once() -> None:
    named = keys_named([row[0] for row in table(DOCS / "manifest.md", "## manifest.json")], tuning_prefix=False)
    assert named == Counter(MANIFEST_KEYS)


# What the "a manifest may" column says for each owner of OWNERSHIP (pipeline/settings/trust.py).
MAY: dict[str, tuple[str, ...]] = {
    "dataset": ("set them",),
    "tighten": ("lower them only", "turn it on only", "narrow it only"),
    "allow-list": ("pick one of",),
    "deployment": ("nothing",),
}


def test_who_may_change_what_names_every_tuning_key_once_with_its_owner() -> None:
    rows = [
        row for row in table(DOCS / "limits-and-trust.md", "## Who may change what") if "outside `tuning`" not in row[0]
    ]
    named = keys_named([row[0] for row in rows], tuning_prefix=False)
    assert named == Counter(list(OWNERSHIP)), "each tuning key needs exactly one row"
    wrong = [
        (key, may)
        for keys, may, _ in rows
        for key in (k.split(".")[0] for k in CODE.findall(keys))
        if not may.startswith(MAY[OWNERSHIP[key]])
    ]
    assert wrong == [], "rows whose 'a manifest may' contradicts OWNERSHIP"
