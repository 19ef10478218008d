"""The notebooks work for a learner in any Jupyter: run in a real kernel, the visible (and,
for instructors, hidden) checks pass on the solution and explain themselves on the release."""
from __future__ import annotations

import re

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from grader.checking.judge import NOT_DONE
from grader.grading.notebooks_io import grade_id, is_test
from notebook_cases import ROOT, course_notebooks

NUMPY_NOTEBOOKS = [n for n in ("01_forward", "02_backprop") if n in course_notebooks()]


def execute(path, allow_errors=False):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.mark.parametrize("name", NUMPY_NOTEBOOKS)
def test_solution_runs_top_to_bottom_in_a_kernel(name):
    nb = execute(ROOT / "solutions" / name / f"{name}.ipynb")
    printed = "".join(o.get("text", "") for c in nb.cells if is_test(c) for o in c.outputs)
    assert "visible checks passed" in printed and "hidden checks passed" in printed


@pytest.mark.parametrize("name", NUMPY_NOTEBOOKS)
def test_release_test_cells_say_what_is_missing(name):
    nb = execute(ROOT / "notebooks" / name / f"{name}.ipynb", allow_errors=True)
    tests = [c for c in nb.cells if is_test(c)]
    assert tests
    for cell in tests:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "AssertionError", grade_id(cell)
        assert NOT_DONE in errors[0].evalue


def test_setup_cells_install_from_the_sites_repository():
    repo_url = yaml.safe_load((ROOT / "mkdocs.yml").read_text().split("\nhooks:")[0])["repo_url"]
    for name in course_notebooks():
        nb = nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4)
        setup = next(c for c in nb.cells if grade_id(c) == "setup")
        assert f"git+{repo_url}" in setup.source, name
        assert re.search(r"find_spec\(\"grader\"\) is None", setup.source), name
