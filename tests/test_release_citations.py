"""Released notebooks read well outside the site: `grader release` turns [@id] keys into readable links.

The site resolves `[@id]` itself; Jupyter and Colab would show the bare key. The solutions keep
their keys, the released notebooks carry `[Title (Author et al., Year)](the work's page)`.
"""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from grader import cli
from grader.grading.release import ReleaseError, cite_readably, release
from grader.catalogue import load_catalogue
from notebook_cases import ROOT

RELEASED = sorted((ROOT / "notebooks").rglob("*.ipynb"))


def markdown_of(path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "markdown"]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(ROOT / "resources.yaml")


@pytest.mark.parametrize("path", RELEASED, ids=[p.name for p in RELEASED])
def test_released_notebooks_carry_no_citation_key(path):
    keys = [cell[:80] for cell in markdown_of(path) if "[@" in cell]
    assert not keys, f"{path.relative_to(ROOT)}: raw citation keys in {keys}"


def test_a_released_citation_reads_exactly_like_a_reference():
    intro = markdown_of(ROOT / "notebooks/02_backprop/02_backprop.ipynb")[0]
    assert ("from the loss back to the input [Learning representations by back-propagating errors "
            "(Rumelhart et al., 1986)](https://www.nature.com/articles/323533a0).") in intro


def test_solutions_keep_their_keys():
    intro = markdown_of(ROOT / "solutions/02_backprop/02_backprop.ipynb")[0]
    assert "[@rumelhart-1986-backpropagation]" in intro


def test_every_key_of_a_solution_becomes_a_link_to_that_work(catalogue):
    by_id = {entry["id"]: entry for entry in catalogue}
    for solution in sorted((ROOT / "solutions").rglob("*.ipynb")):
        keys = {key for cell in markdown_of(solution) for key in cell.split("[@")[1:]}
        released = "\n".join(markdown_of(ROOT / "notebooks" / solution.relative_to(ROOT / "solutions")))
        for key in keys:
            entry = by_id[key.split("]")[0]]
            assert f", {entry['year']})]({entry['url']})" in released, f"{solution.name}: {entry['id']} not rendered"


def test_code_is_left_alone_and_two_authors_are_named(catalogue):
    text = "See `[@kingma-2015-adam]` and [@kingma-2015-adam]."
    assert cite_readably(text, catalogue) == (
        "See `[@kingma-2015-adam]` and [Adam: A Method for Stochastic Optimization (Kingma & Ba, 2015)]"
        "(https://arxiv.org/abs/1412.6980)."
    )


def test_an_unknown_key_fails_the_release_naming_the_file_and_writes_nothing(tmp_path, capsys):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "resources.yaml", course)
    shutil.copytree(ROOT / "solutions" / "01_forward", course / "solutions" / "01_forward")
    path = course / "solutions/01_forward/01_forward.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nSee [@no-such-paper]."
    nbformat.write(nb, path)
    (course / "notebooks" / "01_forward").mkdir(parents=True)
    kept = course / "notebooks/01_forward/01_forward.ipynb"
    kept.write_text("the previous release")

    with pytest.raises(ReleaseError, match=r"notebooks/01_forward/01_forward.ipynb, cell 0: unknown resource id 'no-such-paper' cited"):
        release(course)
    assert kept.read_text() == "the previous release", "a failed release must leave notebooks/ as it was"

    assert cli.main(["release", "--course-dir", str(course)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("grader release: notebooks/01_forward/01_forward.ipynb, cell 0: "
                       "unknown resource id 'no-such-paper' cited")
