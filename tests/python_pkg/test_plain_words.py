"""The README speaks in plain words (issue 17): none of the project's private shorthand for
its benchmarks and history ("the seed's pipeline", "W1", "anchors.py"), which a reader
outside the project cannot look up."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_has_no_private_shorthand():
    text = README.read_text()
    found = {
        word
        for word in re.findall(r"\bW[0-9]\b|anchors(?:\.py)?|the seed's|peer benchmarks", text)
    }
    assert not found, f"README.md uses shorthand a reader cannot look up: {sorted(found)}"
