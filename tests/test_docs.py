"""docs/RELIABILITY.md names a test for each case: every test it names exists."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_test_the_reliability_page_names_exists():
    page = (ROOT / "docs" / "RELIABILITY.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", page)
    assert len(named) >= 30
    for path, name in named:
        source = (ROOT / path).read_text()
        if name and not name.endswith("_"):  # a name ending in "_" is a prefix: test_a_legacy_run_*
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"
        elif name:
            assert re.search(rf"^def {name}", source, re.M), f"no {path}::{name}*"
