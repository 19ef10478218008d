"""Trained models are judged on what the trusted side computes, and stated requirements are checked.

- held-out data never crosses into the sandbox: no row of any call's ``held_out`` is among
  the arrays sent, for every notebook;
- a "model" that looks answers up (the nearest training image) fails for every trained-model
  exercise: notebook 05 through ``grader autograde`` next to an honest student and through
  ``grader check``; notebooks 03 and 04 at the judge, on the outputs such a model returns;
- notebook 03 through ``grader autograde`` and ``grader check``: an honest student keeps full
  marks next to one whose sgd_step updates its inputs in place, whose iterate_minibatches
  ignores its generator and whose train claims a loss its parameters do not have.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess

import nbformat
import numpy as np
import pytest

from grader.checking import exercises
from grader.checking.exercises import gradient_descent, pytorch_autograd, tensorflow_autograd
from grader.checking.judge import judge_calls
from grader.grading.grade import plan_calls
from grader.sandbox.harness import flatten_result
from notebook_cases import ROOT, make_course, solution
from test_autograde import grader

TRAINED = {"03_gradient_descent": "train", "04_tensorflow": "train_keras_model", "05_pytorch": "train_digits"}


@pytest.mark.parametrize("notebook", ["01_forward", "02_backprop", "03_gradient_descent", "04_tensorflow", "05_pytorch"])
def test_every_exercise_says_what_it_trusts(notebook):
    for exercise in exercises.notebook_spec(notebook).exercises:
        assert exercise.trust, f"{exercise.name} does not say which returned arrays it trusts"
        if exercise.judge is not None:  # judged by a property: the reason must be its own
            assert exercise.trusts, f"{exercise.name} is judged by a property and needs its own trusts"


def _rows(array) -> set[bytes]:
    array = np.asarray(array, np.float64)
    return {row.tobytes() for row in array.reshape(len(array), -1)} if array.ndim else set()


@pytest.mark.parametrize("notebook", sorted(TRAINED))
def test_held_out_data_never_enters_the_sandbox(notebook):
    spec = exercises.notebook_spec(notebook)
    planned, _, arrays = plan_calls(spec, seed=5)
    sent = set().union(*(_rows(a) for a in arrays.values() if np.asarray(a).dtype.kind in "biuf"))
    held_out = [call.held_out["x"] for name, call in planned if name == TRAINED[notebook]]
    assert held_out and all(call.held_out for name, call in planned if name == TRAINED[notebook])
    assert all(not (_rows(x) & sent) for x in held_out)


# --- the judges, on what a lookup "model" returns -------------------------------------------------

def test_03_train_is_judged_by_its_parameters_on_held_out_data():
    train = exercises.notebook_spec("03_gradient_descent").exercise("train")
    call = gradient_descent.regression_call(np.random.default_rng(3))
    params, history = gradient_descent.reference_train(*call.args, **call.kwargs)
    honest = flatten_result((params, history))
    assert judge_calls(train, [call], [{"outputs": honest}]).passed
    # The history claims a perfect fit that the returned parameters do not have.
    claimed = flatten_result(({k: v + 0.3 for k, v in params.items()}, [0.01] * len(history)))
    assert judge_calls(train, [call], [{"outputs": claimed}]).hint == gradient_descent.TRAIN_HISTORY_NOT_FULL
    # A real training loss, but parameters that do not generalise to the held-out rows.
    shifted = dataclasses.replace(call, held_out={"x": call.held_out["x"], "y": call.held_out["y"] + 1.0})
    assert judge_calls(train, [shifted], [{"outputs": honest}]).hint == gradient_descent.TRAIN_TARGET_MISSED


def _nearest(x_train, targets, x):
    return targets[np.argmin(((x[:, None, :] - x_train[None]) ** 2).sum(axis=2), axis=1)]


def test_04_a_lookup_model_fails_and_trained_weights_pass():
    exercise = exercises.notebook_spec("04_tensorflow").exercise("train_keras_model")
    call = exercise.hidden_calls(np.random.default_rng(8))[0]
    x, y = call.args
    rng = np.random.default_rng(0)
    untrained = [rng.normal(size=s).astype(np.float32) for s in tensorflow_autograd.KERAS_SHAPES]
    lookup = {**{f"param.{i}": w for i, w in enumerate(untrained)},
              "output": _nearest(x, y, call.probe_args["x"])}
    assert judge_calls(exercise, [call], [{"outputs": lookup}]).hint == tensorflow_autograd.KERAS_OUTPUT
    # Weights trained on the training data alone (NumPy SGD, Keras's recipe) pass on the held-out data.
    initial = {"W1": untrained[0] * 0.3, "b1": np.zeros(20), "W2": untrained[2] * 0.2, "b2": np.zeros(5)}
    params, _ = gradient_descent.reference_train(x.astype(np.float64), y.astype(np.float64), initial, 0.2, 10, 32, 0)
    weights = [params[k].astype(np.float32) for k in ("W1", "b1", "W2", "b2")]
    trained = {**{f"param.{i}": w for i, w in enumerate(weights)},
               "output": tensorflow_autograd.oracles.mlp_forward(call.probe_args["x"].astype(np.float64), params)}
    assert judge_calls(exercise, [call], [{"outputs": trained}]).passed


def test_05_a_lookup_module_fails_and_trained_parameters_pass():
    exercise = exercises.notebook_spec("05_pytorch").exercise("train_digits")
    call = exercise.hidden_calls(np.random.default_rng(9))[0]
    x_train, labels, _ = call.args
    probe = call.probe_args["x"]
    one_parameter = {"param.0": np.ones(1, np.float32), "output": np.eye(10)[_nearest(x_train, labels, probe)]}
    assert judge_calls(exercise, [call], [{"outputs": one_parameter}]).hint == pytorch_autograd.DIGITS_OUTPUT
    rng = np.random.default_rng(1)
    shapes_only = {**{f"param.{i}": rng.normal(size=s).astype(np.float32)
                      for i, s in enumerate(pytorch_autograd.DIGITS_SHAPES)},
                   "output": np.eye(10)[_nearest(x_train, labels, probe)]}
    assert judge_calls(exercise, [call], [{"outputs": shapes_only}]).hint == pytorch_autograd.DIGITS_OUTPUT
    params, _ = gradient_descent.reference_train(
        x_train.astype(np.float64), np.eye(10)[labels], gradient_descent.he_params(rng, 64, 64, 10),
        0.05, 20, 16, 0, loss="cross_entropy")
    trained = {"param.0": params["W1"].T, "param.1": params["b1"], "param.2": params["W2"].T, "param.3": params["b2"],
               "output": gradient_descent.oracles.mlp_forward(probe.astype(np.float64), params)}
    assert judge_calls(exercise, [call], [{"outputs": trained}]).passed


# --- notebook 05 through autograde and check: a lookup module next to an honest student ----------

LOOKUP_MODULES = {
    "lookup_one_parameter": """
class Lookup(nn.Module):
    def __init__(self, x, labels):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # so that the grader's probe has a parameter to read
        self.x, self.labels = torch.tensor(x), torch.tensor(labels)

    def forward(self, x):
        nearest = torch.cdist(x, self.x).argmin(dim=1)
        return F.one_hot(self.labels[nearest], 10).float() * self.scale


def train_digits(x_train, labels_train, seed):
    return Lookup(x_train, labels_train)
""",
    "lookup_with_the_right_parameters": """
class Lookup(nn.Module):
    def __init__(self, x, labels):
        super().__init__()
        self.hidden, self.output = nn.Linear(64, 64), nn.Linear(64, 10)  # never trained, never used
        self.x, self.labels = torch.tensor(x), torch.tensor(labels)

    def forward(self, x):
        nearest = torch.cdist(x, self.x).argmin(dim=1)
        return F.one_hot(self.labels[nearest], 10).float()


def train_digits(x_train, labels_train, seed):
    return Lookup(x_train, labels_train)
""",
}


def check_rows(stdout: str) -> dict[str, list[str]]:
    """``grader check``'s table: exercise -> [points, result, hint]."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and "/" in parts[1]:
            rows[parts[0]] = parts[1:] + [""] * (4 - len(parts))
    return rows


def with_answers(nb, answers: dict[str, str]):
    """``nb`` with these answer cells replaced and its demo cells emptied (as a learner may:
    the demos train the same models again, which only costs time here)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and cell.metadata["nbgrader"].get("solution"):
            cell.source = answers[gid]
        elif cell.cell_type == "code" and "nbgrader" not in cell.metadata:
            cell.source = ""
    return nb


def _release_with(notebook: str, answers: dict[str, str]):
    return with_answers(nbformat.read(ROOT / "notebooks" / notebook / f"{notebook}.ipynb", as_version=4), answers)


def _answer(notebook: str, name: str) -> str:
    return next(c.source for c in solution(notebook).cells if c.metadata.get("nbgrader", {}).get("grade_id") == name
                and c.metadata["nbgrader"].get("solution"))


def _autograde(tmp_path, notebook: str, students: dict) -> tuple[dict, dict]:
    course = make_course(tmp_path / "course")
    for student, nb in students.items():
        folder = tmp_path / "submitted" / student / notebook
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{notebook}.ipynb")
    done = grader("autograde", notebook, tmp_path / "submitted", "--jobs", "2", "--json", "--course-dir", course,
                  "--cell-timeout", "60", "--notebook-timeout", "180")
    summary = {row["student"]: row for row in json.loads(done.stdout)}
    hints = {}
    for student in students:
        manifest = json.loads((course / "autograded" / student / notebook / "grader.json").read_text())
        hints[student] = {e["name"]: e["hint"] for nb in manifest["notebooks"] for e in nb["exercises"]}
    return summary, hints


def test_05_lookup_models_fail_next_to_an_honest_student(tmp_path):
    notebook = "05_pytorch"
    # The one-parameter lookup is judged above, on its outputs; here the one that imitates the network.
    students = {name: _release_with(notebook, {"train_digits": code}) for name, code in LOOKUP_MODULES.items()
                if name == "lookup_with_the_right_parameters"}
    students["honest"] = _release_with(notebook, {"train_digits": _answer(notebook, "train_digits")})
    summary, hints = _autograde(tmp_path, notebook, students)
    assert summary["honest"]["score"] == 3 and hints["honest"]["train_digits"] == ""
    for name in students.keys() - {"honest"}:
        assert summary[name]["score"] == 0 and hints[name]["train_digits"] == pytorch_autograd.DIGITS_OUTPUT
    path = tmp_path / "lookup.ipynb"
    nbformat.write(_release_with(notebook, {"train_digits": LOOKUP_MODULES["lookup_one_parameter"]}), path)
    done = subprocess.run(["grader", "check", str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert check_rows(done.stdout)["train_digits"] == ["0/3", "FAIL", pytorch_autograd.DIGITS_OUTPUT]


# --- notebook 03: inputs changed in place, a generator ignored, a history that lies --------------

BREAKS_REQUIREMENTS = {
    "sgd_step": "def sgd_step(params, grads, lr):\n    for name in params:\n"
                "        params[name] -= lr * grads[name]\n    return params\n",
    "iterate_minibatches": "def iterate_minibatches(x, y, batch_size, rng):\n"
                           "    order = np.random.permutation(len(x))  # NumPy's global random state\n"
                           "    return [(x[order[s:s + batch_size]], y[order[s:s + batch_size]])\n"
                           "            for s in range(0, len(x), batch_size)]\n",
    "train": "def train(x, y, params, lr, epochs, batch_size, seed, loss='mse'):\n"
             "    noisy = {name: value + 0.3 for name, value in params.items()}\n"
             "    return noisy, [0.01] * epochs  # a history that claims the target\n",
}


def test_03_requirements_are_checked_next_to_an_honest_student(tmp_path):
    notebook = "03_gradient_descent"
    attack = _release_with(notebook, BREAKS_REQUIREMENTS)
    honest = with_answers(solution(notebook), {})
    summary, hints = _autograde(tmp_path, notebook, {"honest": honest, "breaks_requirements": attack})
    assert summary["honest"]["score"] == 6 and set(hints["honest"].values()) == {""}
    assert summary["breaks_requirements"]["score"] == 0
    assert hints["breaks_requirements"] == {"sgd_step": gradient_descent.SGD_KEEPS_INPUTS,
                                            "iterate_minibatches": gradient_descent.BATCHES_RNG_ONLY,
                                            "train": gradient_descent.TRAIN_HISTORY_NOT_FULL}
    path = tmp_path / "attack.ipynb"
    nbformat.write(attack, path)
    done = subprocess.run(["grader", "check", str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert check_rows(done.stdout)["sgd_step"] == ["0/1", "FAIL", gradient_descent.SGD_KEEPS_INPUTS]

