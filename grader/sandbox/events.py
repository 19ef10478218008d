"""The harness's event lines, validated: the sandbox wrote them, so each one is a claim.

Learner code can write anything to ``events.jsonl``. Every line must be one of the shapes the
harness writes, field by field (types, index ranges, sizes); anything else raises
``InvalidEvent`` with a one-line reason, and the submission fails on it. Text fields that
reach the trusted side's reports (exception names and values, output) are cut to fixed sizes
here, so whatever was written, what is stored, written or shown is small and valid JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

MAX_LINE_BYTES = 96 * 1024  # the harness cuts its lines to 64 KiB; a longer one is forged
MAX_DEPTH = 4               # the deepest the harness nests: {"error": {"where": {...}}}
ENAME_CHARS = 100
EVALUE_CHARS = 2000
CODE_CHARS = 200
KINDS = ("started", "finished", "cell_start", "cell_end", "call_start", "call_end")


class InvalidEvent(ValueError):
    """str(error) is the one-line reason."""


@dataclass(frozen=True)
class Event:
    kind: str
    index: int = -1          # cells and calls only
    ok: bool = False         # *_end only
    error: dict | None = None
    stdout: str = ""         # cell_end only
    keys: list[str] | None = None  # call_end only


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 14] + " [truncated]"


def _no_deep_nesting(raw: bytes) -> None:
    """Refuse nesting deeper than the protocol's before ``json`` recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                raise InvalidEvent(f"nested deeper than {MAX_DEPTH} levels")
        elif byte in (0x7D, 0x5D):
            depth -= 1


def _error(value, output_chars: int) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= {"ename", "evalue", "missing", "where", "module"}:
        raise InvalidEvent("error is not {ename, evalue, ...}")
    ename, evalue = value.get("ename"), value.get("evalue", "")
    if not isinstance(ename, str) or not isinstance(evalue, str):
        raise InvalidEvent("error name or value is not text")
    error: dict = {"ename": cut(ename, ENAME_CHARS), "evalue": cut(evalue, EVALUE_CHARS)}
    for name in ("missing", "module"):
        if name in value:
            if not isinstance(value[name], str):
                raise InvalidEvent(f"error {name} is not text")
            if value[name].isprintable():  # a name, shown in a hint: printable or not at all
                error[name] = cut(value[name], ENAME_CHARS)
    if "where" in value:
        where = value["where"]
        if not isinstance(where, dict) or set(where) != {"cell", "line", "code"} \
                or not isinstance(where["cell"], str) or not isinstance(where["code"], str) \
                or type(where["line"]) is not int or not 0 <= where["line"] < 10**7:
            raise InvalidEvent("error location is not {cell, line, code}")
        error["where"] = {"cell": cut(where["cell"], CODE_CHARS), "line": where["line"],
                          "code": cut(where["code"], CODE_CHARS)}
    return error


def parse(line: bytes, cells: int, calls: int, output_chars: int) -> Event:
    """One event line, validated against a job of ``cells`` cells and ``calls`` calls."""
    if len(line) > MAX_LINE_BYTES:
        raise InvalidEvent(f"a line of {len(line)} bytes (the limit is {MAX_LINE_BYTES})")
    _no_deep_nesting(line)
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        raise InvalidEvent("a line that is not JSON") from None
    if not isinstance(value, dict) or value.get("event") not in KINDS:
        raise InvalidEvent("a line that is not an event")
    kind = value["event"]
    if kind in ("started", "finished"):
        if set(value) != {"event"}:
            raise InvalidEvent(f"{kind} with unexpected fields")
        return Event(kind)
    index = value.get("index")
    count = cells if kind.startswith("cell") else calls
    if type(index) is not int or not 0 <= index < count:
        raise InvalidEvent(f"{kind} with index {str(index)[:20]!r}, not one of 0..{count - 1}")
    if kind.endswith("_start"):
        if set(value) != {"event", "index"}:
            raise InvalidEvent(f"{kind} with unexpected fields")
        return Event(kind, index)
    ok = value.get("ok")
    if type(ok) is not bool:
        raise InvalidEvent(f"{kind} whose ok is not true or false")
    error = _error(value.get("error"), output_chars)
    if kind == "cell_end":
        if set(value) != {"event", "index", "ok", "error", "stdout"} or not isinstance(value["stdout"], str):
            raise InvalidEvent("cell_end that is not {index, ok, error, stdout}")
        return Event(kind, index, ok, error, stdout=cut(value["stdout"], output_chars + 100))
    keys = value.get("keys")
    if set(value) != {"event", "index", "ok", "error", "keys"}:
        raise InvalidEvent("call_end that is not {index, ok, error, keys}")
    if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
        raise InvalidEvent("call_end whose keys are not a list of names")  # how many: see runner._load_outputs
    return Event(kind, index, ok, error, keys=keys)

