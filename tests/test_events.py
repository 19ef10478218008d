"""Every line the harness writes passes the supervisor's validation, whatever the learner's
exception or output; lines it never writes are refused with a one-line reason."""
from __future__ import annotations

import pytest

from grader.sandbox import events
from grader.sandbox.harness import EventLog, describe_error


def written(tmp_path, **event) -> bytes:
    (tmp_path / "events.jsonl").unlink(missing_ok=True)
    log = EventLog(str(tmp_path / "events.jsonl"), 65536)
    log.emit(**event)
    return (tmp_path / "events.jsonl").read_bytes().rstrip(b"\n")


def raised(exc: BaseException) -> dict:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - any exception a learner can raise
        return describe_error(caught)


def test_the_harness_lines_pass(tmp_path):
    assert events.parse(written(tmp_path, event="started"), 3, 2, 20_000) == events.Event("started")
    line = written(tmp_path, event="cell_end", index=2, ok=False, error=raised(NameError("x", name="relu")), stdout="hi")
    assert events.parse(line, 3, 2, 20_000) == events.Event(
        "cell_end", 2, False, {"ename": "NameError", "evalue": "x", "missing": "relu"}, stdout="hi")
    line = written(tmp_path, event="call_end", index=1, ok=False, keys=None,
                   error=raised(ModuleNotFoundError("no torch", name="torch")))
    assert events.parse(line, 3, 2, 20_000).error == {"ename": "ModuleNotFoundError", "evalue": "no torch",
                                                     "module": "torch"}


def test_a_huge_exception_and_output_still_make_a_valid_line(tmp_path):
    error = raised(type("E" * 1_000_000, (Exception,), {})("v" * 1_000_000))
    line = written(tmp_path, event="cell_end", index=0, ok=False, error=error, stdout="o" * 1_000_000)
    parsed = events.parse(line, 1, 0, 20_000)
    assert parsed.error == {"ename": "E" * 100, "evalue": "v" * 2000}
    assert parsed.stdout == "o" * 8192 + " [truncated]"


@pytest.mark.parametrize("line, reason", [
    (b'{"event": "cell_start", "index": true}', "cell_start with index 'True', not one of 0..2"),
    (b'{"event": "cell_start", "index": 3}', "cell_start with index '3', not one of 0..2"),
    (b'{"event": "call_end", "index": 0, "ok": 1, "keys": null, "error": null}', "call_end whose ok is not true or false"),
    (b'{"event": "elsewhere"}', "a line that is not an event"),
    (b'{"event": "started", "index": 0}', "started with unexpected fields"),
    (b'{"event": "cell_end", "index": 0, "ok": false, "stdout": "", "error": {"ename": "E", "evalue": "", '
     b'"where": {"cell": "f", "line": "1", "code": ""}}}', "error location is not {cell, line, code}"),
    (b'{"event": "call_end", "index": 0, "ok": true, "keys": "a0", "error": null}', "call_end whose keys are not a list of names"),
    (b'{"a": {"b": {"c": {"d": {"e": 1}}}}}', "nested deeper than 4 levels"),
    (b"\xff not json", "a line that is not JSON"),
])
def test_lines_the_harness_never_writes_are_refused(line, reason):
    with pytest.raises(events.InvalidEvent) as refused:
        events.parse(line, 3, 2, 20_000)
    assert str(refused.value) == reason


def test_output_of_wide_characters_still_fits_a_line(tmp_path):
    """An emoji is 12 bytes once escaped: 20,000 of them are cut until the line fits."""
    line = written(tmp_path, event="cell_end", index=0, ok=True, error=None, stdout="\U0001F600" * 20_000)
    assert len(line) <= 65536
    assert events.parse(line, 1, 0, 20_000).stdout.startswith("\U0001F600" * 1000)
