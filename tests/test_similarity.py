"""``grader similarity``: copies of the reference solutions or of another submission are found
whatever names, formatting and comments they wear; independent correct answers are not.

The class is written straight into a course folder's ``autograded/`` (the notebooks
``grader autograde`` leaves there), so no sandbox runs: the copies are the point here.
"""
from __future__ import annotations

import json
import shutil

import nbformat
import numpy as np
import pytest

from grader import cli
from grader.grading import similarity
from grader.grading.notebooks_io import grade_id, is_answer
from notebook_cases import ROOT

ASSIGNMENT = "02_backprop"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

# The reference solution, disguised: other names, other formatting, comments, no docstrings.
RENAMED_COPY = {
    "dense_backward": '''
def dense_backward(grad_out, inputs, weights):
    # backprop through the dense layer
    grad_in = grad_out @ weights.T
    grad_w = inputs.T @ grad_out
    grad_b = grad_out.sum(axis = 0)
    return grad_in, grad_w, grad_b
''',
    "mlp_backward": '''
def mlp_backward(inp, target, p):
    a = dense_forward(inp, p["W1"], p["b1"])
    h = relu(a)
    out = dense_forward(h, p["W2"], p["b2"])
    g = mse_loss_grad(out, target)   # dL/dout
    gh, gW2, gb2 = dense_backward(g, h, p["W2"])
    ga = relu_backward(gh, a)
    _, gW1, gb1 = dense_backward(ga, inp, p["W1"])
    return {"W1": gW1,
            "b1": gb1,
            "W2": gW2,
            "b2": gb2}
''',
    "numerical_gradient": '''
def numerical_gradient(f, x, h=1e-5):
    g = np.zeros_like(x, dtype = np.float64)
    for idx in np.ndindex(*x.shape):
        saved = x[idx]
        x[idx] = saved + h
        up = f(x)
        x[idx] = saved - h
        down = f(x)
        x[idx] = saved
        g[idx] = (up - down) / (2 * h)
    return g
''',
    "relative_error": '''
def relative_error(u, v):
    return np.max(np.abs(u - v)) / max(np.max(np.abs(u) + np.abs(v)),
                                       1e-12)
''',
}

# Two learners' own correct answers, written independently of the reference and of each other.
INDEPENDENT_A = {
    "dense_backward": '''
def dense_backward(dout, x, W):
    db = np.sum(dout, axis=0)
    dW = np.dot(np.transpose(x), dout)
    dx = np.dot(dout, np.transpose(W))
    return dx, dW, db
''',
    "mlp_backward": '''
def mlp_backward(x, y_true, params):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    pre = x @ W1 + b1
    act = np.where(pre > 0, pre, 0.0)
    pred = act @ W2 + b2
    n = pred.size
    d_pred = 2.0 * (pred - y_true) / n
    grads = {"W2": act.T @ d_pred, "b2": d_pred.sum(0)}
    d_pre = (d_pred @ W2.T) * (pre > 0)
    grads["W1"] = x.T @ d_pre
    grads["b1"] = d_pre.sum(0)
    return grads
''',
    "numerical_gradient": '''
def numerical_gradient(f, x, h=1e-5):
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + h
        hi = float(f(x))
        flat[k] = keep - h
        lo = float(f(x))
        flat[k] = keep
        out[k] = (hi - lo) / (2.0 * h)
    return out.reshape(x.shape)
''',
    "relative_error": '''
def relative_error(a, b):
    top = np.abs(a - b).max()
    bottom = (np.abs(a) + np.abs(b)).max()
    if bottom < 1e-12:
        bottom = 1e-12
    return top / bottom
''',
}

INDEPENDENT_B = {
    "dense_backward": '''
def dense_backward(dout, x, W):
    grads = []
    grads.append(np.einsum("bo,io->bi", dout, W))
    grads.append(np.einsum("bi,bo->io", x, dout))
    grads.append(np.einsum("bo->o", dout))
    return tuple(grads)
''',
    "mlp_backward": '''
def mlp_backward(x, y_true, params):
    z = dense_forward(x, params["W1"], params["b1"])
    mask = (z > 0).astype(z.dtype)
    y = dense_forward(z * mask, params["W2"], params["b2"])
    delta = mse_loss_grad(y, y_true)
    result = {}
    result["b2"] = delta.sum(axis=0)
    result["W2"] = np.einsum("bi,bo->io", z * mask, delta)
    back = np.einsum("bo,io->bi", delta, params["W2"]) * mask
    result["b1"] = back.sum(axis=0)
    result["W1"] = np.einsum("bi,bo->io", x, back)
    return result
''',
    "numerical_gradient": '''
def numerical_gradient(f, x, h=1e-5):
    result = np.zeros(x.shape)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        where = it.multi_index
        original = x[where]
        x[where] = original + h
        plus = f(x)
        x[where] = original - h
        minus = f(x)
        result[where] = (plus - minus) / (2 * h)
        x[where] = original
        it.iternext()
    return result
''',
    "relative_error": '''
def relative_error(a, b):
    scale = np.maximum(np.max(np.abs(a) + np.abs(b)), 1e-12)
    difference = np.max(np.abs(np.subtract(a, b)))
    return difference / scale
''',
}


def _answers(answers: dict[str, str]) -> dict[str, str]:
    return {name: code.strip() + "\n" for name, code in answers.items()}


def _reference_answers() -> dict[str, str]:
    nb = nbformat.read(SOLUTION, as_version=4)
    return similarity.reference_sources(nb)


def _functions(answers: dict[str, str]) -> dict:
    """The solution notebook's definitions (imports, forward functions, answers), with
    ``answers`` in place of the reference's answer cells."""
    namespace: dict = {}
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        gid = grade_id(cell)
        if cell.cell_type == "code" and gid in ("imports", "forward_functions"):
            exec(cell.source, namespace)  # noqa: S102 - the course's own solution
    for code in {**_reference_answers(), **answers}.values():
        exec(code, namespace)  # noqa: S102 - the course's solutions and this test's answers
    return namespace


@pytest.mark.parametrize("answers", [RENAMED_COPY, INDEPENDENT_A, INDEPENDENT_B], ids=["copy", "a", "b"])
def test_every_answer_set_is_correct(answers):
    """The disguised copy and the independent answers all compute what the reference does."""
    mine, reference = _functions(_answers(answers)), _functions({})
    rng = np.random.default_rng(0)
    x, W, dout = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    for got, want in zip(mine["dense_backward"](dout, x, W), reference["dense_backward"](dout, x, W)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    params = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5), "W2": rng.normal(size=(5, 2)),
              "b2": rng.normal(size=2)}
    y = rng.normal(size=(4, 2))
    got, want = mine["mlp_backward"](x, y, params), reference["mlp_backward"](x, y, params)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(mine["numerical_gradient"](lambda v: float((v ** 3).sum()), x.copy()), 3 * x ** 2,
                               rtol=1e-6)
    assert mine["relative_error"](x, W[:, :1].T.repeat(4, 0)[:, :3]) == \
        pytest.approx(reference["relative_error"](x, W[:, :1].T.repeat(4, 0)[:, :3]), rel=1e-12)


def _submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(RELEASE, as_version=4)
    for cell in nb.cells:
        if is_answer(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """verbatim: the reference pasted; disguised: the reference renamed and reformatted;
    a, b: independent answers; copies_a: a's answers renamed and reformatted; untouched: the stubs."""
    course = tmp_path_factory.mktemp("course")
    (course / "solutions" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOLUTION, course / "solutions" / ASSIGNMENT)
    copies_a = {name: code.replace("dout", "upstream").replace("bottom", "den").replace("    ", "  ")
                .replace("top", "num") + "# mine\n" for name, code in _answers(INDEPENDENT_A).items()}
    class_ = {"verbatim": _reference_answers(), "disguised": _answers(RENAMED_COPY), "a": _answers(INDEPENDENT_A),
              "b": _answers(INDEPENDENT_B), "copies_a": copies_a, "untouched": {}}
    for student, answers in class_.items():
        folder = course / "autograded" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(_submission(answers), folder / f"{ASSIGNMENT}.ipynb")
    return course


def _pairs(matches) -> dict[frozenset, float]:
    return {frozenset((m.a, m.b)): m.score for m in matches}


def test_copies_are_found_and_independent_answers_are_not(course):
    matches, _ = similarity.find_copies(course, ASSIGNMENT)
    pairs = _pairs(matches)
    reference = similarity.REFERENCE
    assert pairs == {frozenset(("verbatim", reference)): 1.0, frozenset(("disguised", reference)): 1.0,
                     frozenset(("verbatim", "disguised")): 1.0, frozenset(("a", "copies_a")): 1.0}


def test_the_scores_of_independent_pairs_stay_low(course):
    """Every pair not listed above scores at most a quarter (the threshold is a half)."""
    matches, _ = similarity.find_copies(course, ASSIGNMENT, threshold=0.0)
    pairs = _pairs(matches)
    for pair in (("a", "b"), ("a", similarity.REFERENCE), ("b", similarity.REFERENCE), ("a", "verbatim")):
        assert pairs.get(frozenset(pair), 0.0) <= 0.25, pair


def test_the_command_prints_the_pairs_and_writes_the_report_side_by_side(course, capsys):
    assert cli.main(["similarity", ASSIGNMENT, "--course-dir", str(course), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = course / "reports" / ASSIGNMENT / "similarity.html"
    assert printed["report"] == str(report)
    listed = {frozenset((p["a"], p["b"])) for p in printed["pairs"]}
    assert frozenset(("a", "copies_a")) in listed and len(listed) == 4
    disguised = next(p for p in printed["pairs"] if {p["a"], p["b"]} == {"disguised", similarity.REFERENCE})
    assert sorted(c["cell"] for c in disguised["cells"]) == [
        f"{ASSIGNMENT}.ipynb:{name}" for name in ("dense_backward", "mlp_backward", "numerical_gradient",
                                                  "relative_error")]
    page = report.read_text()
    assert "grad_w = inputs.T @ grad_out" in page and "dW = x.T @ dout" in page  # both sides, as written
    assert not list(course.glob("feedback/**/*")), "nothing is written where learners get their feedback"


def test_no_graded_submission_is_one_line_and_status_2(tmp_path, capsys):
    assert cli.main(["similarity", ASSIGNMENT, "--course-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run grader autograde first" in err


def test_normalisation_ignores_names_formatting_comments_and_docstrings():
    one = 'def f(x, w):\n    """Doc."""\n    h = np.maximum(x @ w, 0)  # relu\n    return h.sum(axis=0)\n'
    two = "def f(inp,weights):\n  hidden=np.maximum(inp@weights,\n        0)\n  return hidden.sum(axis = 0)\n"
    other = "def f(x, w):\n    return np.maximum(x @ w, 0).sum(axis=0)\n"
    assert similarity.normalise(one) == similarity.normalise(two) != similarity.normalise(other)
    assert "np" in similarity.normalise(one) and "maximum" in similarity.normalise(one)  # library names kept
