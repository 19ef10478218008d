"""notebooks/ is exactly what `grader release` makes from solutions/, and nothing carries outputs."""
from __future__ import annotations

import filecmp
import json

import pytest

from grader.grading.release import release
from notebook_cases import ROOT

COMMITTED = sorted(p for folder in ("solutions", "notebooks") for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def test_release_is_up_to_date(tmp_path):
    fresh = release(ROOT, output=tmp_path)
    assert fresh, "no assignments in solutions/"
    made = {p.relative_to(tmp_path) for p in fresh}
    committed = {p.relative_to(ROOT / "notebooks") for p in (ROOT / "notebooks").rglob("*.ipynb")}
    assert made == committed, "notebooks/ and solutions/ hold different notebooks: run `make release`"
    stale = [str(p) for p in sorted(made) if not filecmp.cmp(tmp_path / p, ROOT / "notebooks" / p, shallow=False)]
    assert not stale, f"notebooks/ is out of date for {stale}: run `make release`"


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(ROOT)) for p in COMMITTED])
def test_committed_notebooks_carry_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.relative_to(ROOT)}: cells {dirty} carry outputs or execution counts"


def test_releases_hide_solutions_and_hidden_tests():
    for path in (ROOT / "notebooks").rglob("*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
            assert marker not in text, f"{path.relative_to(ROOT)} still contains {marker!r}"
