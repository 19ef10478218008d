"""Unit tests, no sandbox: ``notebooks_io.assemble`` (a submission fitted to the released
notebook) and the file-name patterns of ``grading/submissions.py`` (LMS downloads and nbgrader's
layout). The end-to-end class in test_autograde.py covers them together; these say which rule broke."""
from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.grading.notebooks_io import assemble
from grader.grading.submissions import Submission, SubmissionsError, find

STUB = "def relu(z):\n    raise NotImplementedError()"
TEST = "assert relu(1) == 1"


def nbgrader_cell(cell, grade_id: str, **flags):
    cell.metadata["nbgrader"] = {"grade_id": grade_id, **flags}
    return cell


def template():
    """A released notebook: intro (read-only), answer, visible test, a scratch cell."""
    return new_notebook(cells=[
        nbgrader_cell(new_markdown_cell("# ReLU", id="intro"), "intro", locked=True),
        nbgrader_cell(new_code_cell(STUB, id="answer"), "relu_answer", solution=True),
        nbgrader_cell(new_code_cell(TEST, id="test"), "relu_test", grade=True, locked=True, points=1),
        new_code_cell("# try things here", id="scratch"),
    ])


def sources(nb) -> list[str]:
    return [cell.source for cell in nb.cells]


def test_an_untouched_submission_is_the_template():
    nb, notes = assemble(template(), template())
    assert sources(nb) == sources(template()) and notes == []


def test_the_answer_and_scratch_cells_are_the_learners():
    submission = template()
    submission.cells[1].source = "def relu(z):\n    return max(z, 0)"
    submission.cells[3].source = "print(relu(-2))"
    nb, notes = assemble(submission, template())
    assert sources(nb) == ["# ReLU", "def relu(z):\n    return max(z, 0)", TEST, "print(relu(-2))"]
    assert notes == []


def test_edited_tests_and_read_only_cells_are_restored():
    submission = template()
    submission.cells[0].source = "# my notes"
    submission.cells[2].source = "assert True"
    nb, notes = assemble(submission, template())
    assert sources(nb) == sources(template())
    assert notes == ["2 read-only or test cell(s) had been edited and were restored"]


def test_a_deleted_answer_keeps_the_stub_and_says_so():
    submission = template()
    del submission.cells[1]
    nb, notes = assemble(submission, template())
    assert sources(nb) == sources(template())
    assert notes == ["answer cell 'relu_answer' was missing; the assignment's stub was used"]


def test_reordered_cells_are_put_back():
    submission = template()
    submission.cells = [submission.cells[i] for i in (2, 1, 0, 3)]
    submission.cells[1].source = "def relu(z):\n    return z * (z > 0)"
    nb, notes = assemble(submission, template())
    assert sources(nb) == ["# ReLU", "def relu(z):\n    return z * (z > 0)", TEST, "# try things here"]
    assert notes == ["cells were reordered; the assignment's order was restored"]


def test_added_cells_stay_after_the_cell_they_followed_without_grading_metadata():
    submission = template()
    extra = nbgrader_cell(new_code_cell("x = 1", id="mine"), "relu_test", grade=True, points=100)
    submission.cells.insert(2, new_markdown_cell("my working", id="note"))
    submission.cells.insert(4, extra)  # after the test: a second cell claiming its grade_id
    nb, notes = assemble(submission, template())
    assert sources(nb) == ["# ReLU", STUB, "my working", TEST, "x = 1", "# try things here"]
    assert "nbgrader" not in nb.cells[4].metadata  # it can neither score nor be graded
    assert len({cell.id for cell in nb.cells}) == len(nb.cells)
    assert notes == ["1 duplicated cell(s) were kept as extra cells"]


def test_a_renamed_grade_id_is_matched_by_cell_id():
    submission = template()
    submission.cells[1].metadata["nbgrader"]["grade_id"] = "renamed"
    submission.cells[1].source = "def relu(z):\n    return abs(z)"
    nb, _ = assemble(submission, template())
    assert nb.cells[1].source == "def relu(z):\n    return abs(z)"
    assert nb.cells[1].metadata["nbgrader"]["grade_id"] == "relu_answer"


# --- submissions: where the files are, whose they are ----------------------------------------

NOTEBOOKS = ["01_forward"]


def touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_student(found: list[Submission]) -> dict[str, dict[str, str]]:
    return {s.student: {name: Path(p).name for name, p in s.files.items()} for s in found}


@pytest.mark.parametrize("file_name,student", [
    ("alice_01_forward.ipynb", "alice"),                            # the plain pattern
    ("bob_12345_01_forward.ipynb", "bob"),                          # Canvas: student_id_attempt_name
    ("carol_late_67890_01_forward.ipynb", "carol"),                 # Canvas, late
    ("dave_1234_5678_01_forward-1.ipynb", "dave"),                  # renamed by the LMS: still graded
])
def test_lms_file_names_give_the_student_before_the_first_underscore(tmp_path, file_name, student):
    touch(tmp_path / file_name)
    found = find("01_forward", NOTEBOOKS, tmp_path)
    assert [s.student for s in found] == [student]
    assert by_student(found)[student] == {"01_forward": file_name}


def test_lms_files_that_fit_no_pattern_or_are_hidden_are_left_out(tmp_path):
    touch(tmp_path / "README.txt")
    touch(tmp_path / ".alice_01_forward.ipynb")
    touch(tmp_path / "__MACOSX" / "alice_01_forward.ipynb")
    touch(tmp_path / "bob_01_forward.ipynb")
    assert by_student(find("01_forward", NOTEBOOKS, tmp_path)) == {"bob": {"01_forward": "bob_01_forward.ipynb"}}


def test_two_files_for_one_notebook_keep_the_last_and_say_so(tmp_path):
    touch(tmp_path / "alice_1_01_forward.ipynb")
    touch(tmp_path / "alice_2_01_forward.ipynb")
    [alice] = find("01_forward", NOTEBOOKS, tmp_path)
    assert Path(alice.files["01_forward"]).name == "alice_2_01_forward.ipynb"
    assert alice.problems == ["alice_2_01_forward.ipynb: several files for 01_forward; graded the last one"]


def test_a_missing_notebook_of_several_is_named_not_skipped(tmp_path):
    touch(tmp_path / "alice_01_forward.ipynb")
    [alice] = find("a", ["01_forward", "02_backprop"], tmp_path)
    assert alice.read()["01_forward"] == b"{}" and alice.read()["02_backprop"] is None


def test_a_custom_pattern_with_a_file_id(tmp_path):
    touch(tmp_path / "s0042-attempt-01_forward_v2.ipynb")
    pattern = r"^(?P<student_id>s\d+)-attempt-(?P<file_id>.+)\.ipynb$"
    assert by_student(find("01_forward", NOTEBOOKS, tmp_path, pattern=pattern)) == \
        {"s0042": {"01_forward": "s0042-attempt-01_forward_v2.ipynb"}}


def test_nbgrader_layout_takes_the_folder_names(tmp_path):
    touch(tmp_path / "alice" / "01_forward" / "01_forward.ipynb")
    (tmp_path / "bob").mkdir()  # a student with nothing for this assignment
    found = find("01_forward", NOTEBOOKS, tmp_path)
    assert [s.student for s in found] == ["alice", "bob"]
    assert found[0].problems == [] and found[1].problems == [f"{tmp_path / 'bob' / '01_forward'}: no submission for 01_forward"]


def test_a_zip_is_unpacked_into_the_scratch_folder_given(tmp_path):
    archive = tmp_path / "downloads.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("submissions/alice_01_forward.ipynb", "{}")
    found = find("01_forward", NOTEBOOKS, archive, scratch=tmp_path / "scratch")
    assert by_student(found) == {"alice": {"01_forward": "alice_01_forward.ipynb"}}
    assert Path(found[0].files["01_forward"]).is_relative_to(tmp_path / "scratch")


def test_the_digest_follows_the_contents_and_reads_them_once(tmp_path):
    path = touch(tmp_path / "alice_01_forward.ipynb", '{"v": 1}')
    [alice] = find("01_forward", NOTEBOOKS, tmp_path)
    contents = alice.read()
    before = alice.digest(contents)
    path.write_text('{"v": 2}')
    assert alice.digest(contents) == before  # the bytes that were read, not the file now
    assert alice.digest() != before


def test_unusable_locations_are_one_line_errors(tmp_path):
    with pytest.raises(SubmissionsError, match=f"^{tmp_path / 'nope'}: no such file or folder$"):
        find("01_forward", NOTEBOOKS, tmp_path / "nope")
    nbformat.write(new_notebook(), tmp_path / "x.ipynb")
    with pytest.raises(SubmissionsError, match="not a folder or a zip file$"):
        find("01_forward", NOTEBOOKS, tmp_path / "x.ipynb")
