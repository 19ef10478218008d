"""The sandbox's failure kinds are named once (grader.sandbox.failures); the harness, which may
not import the package, writes the same words, and the judge passes their messages through."""
from __future__ import annotations

import numpy as np

from grader.checking.judge import error_hint
from grader.checking.spec import Call
from grader.sandbox import harness
from grader.sandbox.calls import call_in_process
from grader.sandbox.failures import SANDBOX_FAILURES, Failure, failure


def test_the_harness_writes_the_named_kinds():
    assert harness.CALL_TIMEOUT == Failure.CALL_TIMEOUT.value
    assert harness.CellTimeout.__name__ == Failure.CELL_TIMEOUT.value
    assert harness.ResultError.__name__ == Failure.RESULT_ERROR.value


def test_a_call_time_out_is_not_a_cell_time_out():
    assert Failure.CALL_TIMEOUT.value == "CallTimeout" != Failure.CELL_TIMEOUT.value


def test_every_sandbox_failure_reaches_the_learner_as_its_message():
    for kind in Failure:
        assert kind.value in SANDBOX_FAILURES
        assert error_hint(failure(kind, "relu did not finish within 2 s")) == "relu did not finish within 2 s"
    # A learner's own exception is named as such.
    assert error_hint({"ename": "ValueError", "evalue": "bad"}) == "raised ValueError: bad"


def test_the_in_kernel_check_reports_errors_in_the_harness_shape():
    def learner(x):
        return undefined_name  # noqa: F821

    via_kernel = call_in_process(learner, "learner", Call(args=(np.ones(2),)))
    try:
        learner(None)
    except NameError as exc:
        via_harness = harness.describe_error(exc)
    assert via_kernel == {"error": via_harness}
    assert via_harness == {"ename": "NameError", "evalue": "name 'undefined_name' is not defined",
                           "missing": "undefined_name"}


def test_a_call_that_hangs_is_reported_as_a_call_time_out(tmp_path):
    """The harness's own call loop, here in-process: a function that never returns is stopped
    at its call's time limit, named CallTimeout, and not called again."""
    import signal
    import time

    events = []

    class Log:
        def emit(self, **event):
            events.append(event)

    def hangs():
        while True:
            time.sleep(0.01)

    call = {"fn": "hangs", "args": [], "kwargs": {}, "timeout": 0.2}
    previous = signal.signal(signal.SIGALRM, harness._on_alarm)
    try:
        harness.make_calls({"hangs": hangs}, [call, call], {}, set(), Log(), str(tmp_path), 1000)
    finally:
        signal.signal(signal.SIGALRM, previous)
    ends = [e for e in events if e["event"] == "call_end"]
    assert [e["error"]["ename"] for e in ends] == [Failure.CALL_TIMEOUT.value] * 2
    assert ends[0]["error"]["evalue"] == "hangs did not finish within 0.2 s"
    assert sum(e["event"] == "call_start" for e in events) == 1  # the second call was not made
