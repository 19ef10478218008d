"""The sandbox's own failure kinds: the ``ename`` of an error that the learner's code did not raise.

The harness runs inside the sandbox and imports nothing from ``grader``, so it writes the
values it produces (``CellTimeout``, ``CallTimeout``, ``ResultError``) as literal strings;
``tests/test_sandbox_failures.py`` checks that they are these.
"""
from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    CELL_TIMEOUT = "CellTimeout"        # a cell ran past its time limit (harness)
    CALL_TIMEOUT = "CallTimeout"        # a call of a learner's function ran past its limit (harness)
    RESULT_ERROR = "ResultError"        # a result that is not numbers of the announced shape (harness, runner)
    PROCESS_DIED = "ProcessDied"        # the notebook's process died while running a cell or call (runner)
    TIME_LIMIT = "TimeLimitExceeded"    # the notebook was stopped at its time or memory limit (runner)
    NOT_RUN = "NotRun"                  # the notebook stopped before this call was made (runner)
    INVALID_EVENT = "InvalidEvent"      # the sandbox wrote an event the protocol does not allow (runner)


SANDBOX_FAILURES = frozenset(failure.value for failure in Failure)


def failure(kind: Failure, message: str) -> dict[str, str]:
    """An error as the sandbox reports it, in the shape of a learner's exception."""
    return {"ename": kind.value, "evalue": message}


# How an import of PyTorch or TensorFlow fails in a NumPy notebook's sandbox (jail.ABSENT says it).
NUMPY_NOTEBOOK = "this is a NumPy notebook"


def framework_hint(error: dict) -> str | None:
    """The hint for an import that failed because the notebook is graded with NumPy alone."""
    if error.get("ename") not in ("ModuleNotFoundError", "ImportError") or NUMPY_NOTEBOOK not in str(error.get("evalue")):
        return None
    module = str(error.get("module") or "PyTorch or TensorFlow").split(".")[0][:40]
    return (f"{module} cannot be imported: this is a NumPy notebook, graded with NumPy alone (a framework "
            "would do the work it teaches, such as the backward pass); write it with NumPy.")
