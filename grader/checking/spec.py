"""What an exercise is: the function a learner writes, the calls that test it, and known mistakes.

An exercise never holds a copy of the solution. Its ``expected`` output comes from
``grader.checking.oracles``, an independent formulation that the tests check against finite
differences and autograd; its ``mistakes`` are small *wrong* implementations whose
outputs, when a learner's answer reproduces them, name what went wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Tensor:
    """An argument handed to the learner's function as a framework tensor, not a NumPy array.

    ``framework`` is "torch" or "tf"; ``trainable`` asks for a tensor that records
    gradients (``requires_grad=True`` in PyTorch, a ``tf.Variable`` in TensorFlow).
    """

    framework: str
    value: np.ndarray
    trainable: bool = False


@dataclass(frozen=True)
class Function:
    """A scalar test function handed to the learner by name (e.g. to ``numerical_gradient``).

    The harness builds the callable from ``name`` and ``params`` (see ``harness.SCALAR_FUNCTIONS``);
    the oracle side knows the same functions' analytic gradients.
    """

    name: str
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class TorchGenerator:
    """A ``torch.Generator`` seeded with ``seed``, handed to the learner's function."""

    seed: int


@dataclass(frozen=True)
class GPTModel:
    """A GPT ``nn.Module`` with notebook 07's parameter names holding ``weights`` (name -> array),
    built inside the sandbox by the harness: a model whose right answers the judge knows."""

    weights: dict[str, np.ndarray] = field(repr=False)  # a log line names the model, not its numbers
    n_head: int = 1


@dataclass(frozen=True)
class LearnerModel:
    """A model built in the sandbox by the learner's own ``builder`` (e.g. ``make_llama``) from
    ``config``, converted to float64 and given ``weights`` by name (``load_state_dict(strict=True)``):
    the learner's code with the judge's weights, so that the judge knows the right answers."""

    builder: str
    config: dict
    weights: dict[str, np.ndarray] = field(repr=False)


@dataclass(frozen=True)
class TinyLM:
    """Notebook 09's small causal transformer (pre-LN blocks with separate q, k, v, o projections) holding
    ``weights`` (name -> array), built inside the sandbox by the harness."""

    weights: dict[str, np.ndarray] = field(repr=False)
    n_head: int = 1


@dataclass(frozen=True)
class Linear:
    """An ``nn.Linear`` with the given weight (out, in) and bias (out,), built by the harness."""

    weight: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Call:
    """One call of the learner's function: positional and keyword arguments, and a probe.

    ``probe`` names a harness-side conversion of the result when it is not plain numbers
    (for example a Keras model, from which the probe reads weights and outputs).
    ``held_out`` is data for the judge alone (a trained model's test set): it never crosses
    into the sandbox, and nothing that does lets the learner's code rebuild it.
    """

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    probe: str | None = None
    probe_args: dict[str, np.ndarray] = field(default_factory=dict)
    held_out: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A mistake learners make, recognised by reproducing it.

    ``wrong`` computes the wrong answer from the same (plain NumPy) arguments; when the
    learner's output matches it, ``hint`` is what they are told. An exercise judged by a
    property (``Exercise.judge``) names its mistakes itself and leaves ``wrong`` out. ``key`` limits the match to
    one part of a multi-part answer (e.g. "2" for ``db`` in ``(dx, dW, db)``). ``inject`` is
    source code for the learner's answer cell that makes this mistake; the tests put it into
    the solution and check that exactly this hint appears.
    """

    hint: str
    inject: str
    key: str | None = None
    wrong: Callable[..., Any] | None = field(default=None, kw_only=True)


Judge = Callable[[Call, dict[str, np.ndarray]], "str | None"]


@dataclass(frozen=True)
class Exercise:
    """One graded function of a notebook.

    ``visible_calls`` are the fixed examples of the visible tests; ``hidden_calls(rng)`` draws
    fresh inputs at grading time. ``expected(*args, **kwargs)`` is the oracle. Exercises whose
    answer is judged by a property rather than by equality (training reaches a loss, a
    mini-batch iterator covers every row once) give ``judge``, which returns ``None`` when the
    output is right and a hint otherwise.

    ``trusts`` says, in a sentence, which returned arrays the verdict rests on and why they can
    be believed: everything the sandbox returns is a claim, so each judged number is either
    recomputed here from returned arrays or checked to be consistent with them.
    ``keeps_inputs`` is the hint for an answer that changes its argument arrays, checked on the
    calls with the "inputs_after" probe; ``rng_only`` the hint for one whose randomness does not
    come from its generator argument alone, checked on the calls with the "reseeded" probe.

    ``outputs`` names what the function returns, in order: the parts of a returned tuple
    (``("dx", "dW", "db")``), or the one value a probe reads back as "result" (``("loss",)``).
    Every message about a part names it; without names a part is "value 2 of 3".
    ``keeps_float32`` asks that float32 inputs give float32 outputs (the notebook's stated
    return format): on a call whose floating-point inputs are all float32, a floating-point
    output of another dtype fails with ``judge.float32_hint``.
    ``uses`` names other exercises whose functions the harness calls to build this one's
    arguments (a model made by the learner's ``make_llama``): when they fail, so does this one.
    """

    name: str
    points: int
    title: str
    visible_calls: Callable[[], list[Call]]
    hidden_calls: Callable[[np.random.Generator], list[Call]]
    expected: Callable[..., Any] | None = None
    mistakes: tuple[Mistake, ...] = ()
    judge: Judge | None = None
    rtol: float = 1e-5
    atol: float = 1e-7
    call_timeout: float = 30.0
    trusts: str = ""
    keeps_inputs: str = ""
    rng_only: str = ""
    outputs: tuple[str, ...] = ()
    keeps_float32: bool = False
    uses: tuple[str, ...] = ()

    @property
    def trust(self) -> str:
        """What the verdict rests on (``trusts``, or the rule for exercises judged by an oracle)."""
        if self.trusts:
            return self.trusts
        if self.expected is not None:
            return ("the returned arrays only: each is compared with the oracle's answer, computed here from "
                    "the inputs that were sent.")
        return ""

    @property
    def answer_id(self) -> str:
        """nbgrader grade_id of the answer cell."""
        return self.name

    @property
    def grade_id(self) -> str:
        """nbgrader grade_id of the test cell that carries the points."""
        return f"test_{self.name}"


@dataclass(frozen=True)
class NotebookSpec:
    """The exercises of one notebook, in order, and the limits it runs under."""

    name: str
    exercises: tuple[Exercise, ...]
    cell_timeout: float = 60.0
    notebook_timeout: float = 240.0
    memory_bytes: int = 6 << 30
    # A NumPy notebook: its sandbox holds no PyTorch or TensorFlow (they would do the work the
    # notebook teaches, e.g. autograd for a backward pass); see runner.Limits.numpy_only.
    numpy_only: bool = False
    # Modules the judge imports while grading (scikit-learn for the digits): the grading workers'
    # server imports them once, instead of every worker once per submission.
    judge_imports: tuple[str, ...] = ()

    def exercise(self, name: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.name == name:
                return exercise
        raise KeyError(f"{self.name} has no exercise {name!r}")

    @property
    def total_points(self) -> int:
        return sum(exercise.points for exercise in self.exercises)
