"""What is off in a wrong answer that no catalogued mistake explains.

The trusted judge compares the learner's array with the oracle's. When they differ, the
difference often has a shape a program can recognise: a constant factor (twice, half, the
negative, the batch size), the transpose, one of the call's inputs added or left out, the same
offset in every row, NaN in some rows. ``diagnose`` looks for each of these in turn and says
the first that the numbers support exactly (to a relative 1e-4, far below any coincidence of
unrelated arrays); otherwise it names the first wrong entry, with both values. Every sentence
is a fact about the two arrays, never a guess about the code.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A transformation counts as found when it reproduces the learner's array this closely.
MATCH_RTOL = 1e-4


@dataclass(frozen=True)
class Diagnosis:
    text: str
    kind: str | None = None  # what was recognised ("ratio", "transposed", ...); None: only where it differs

    @property
    def named(self) -> bool:
        return self.kind is not None


@dataclass(frozen=True)
class Input:
    """One array the learner's function received, as a hint names it."""

    name: str
    value: np.ndarray


def _fits(got: np.ndarray, candidate: np.ndarray, atol: float) -> bool:
    return candidate.shape == got.shape and bool(np.allclose(got, candidate, rtol=MATCH_RTOL, atol=atol))


def _number(x: float) -> str:
    return f"{x:.6g}"


def _index(index: tuple) -> str:
    return f" at index {tuple(int(i) for i in index)}" if index else ""


def _rows(mask: np.ndarray) -> str:
    """Where ``mask`` is set: "rows 2, 5 of 8" (or "entries" of a 1-D array)."""
    rows = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    shown = ", ".join(str(int(r)) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    word = "row" if mask.ndim >= 2 else "entry"
    plural = {"row": "rows", "entry": "entries"}[word] if len(rows) > 1 else word
    return f"{plural} {shown} of {mask.shape[0]}"


def counts(want: np.ndarray, inputs: list[Input]) -> list[tuple[int, str]]:
    """Whole numbers a wrong factor often is, each with where it comes from: the batch size
    (``x.shape[0]``), a row's length (``x.shape[1]``), an element count (``x.size``)."""
    named: dict[int, str] = {}
    first_batch = True
    for item in inputs:
        shape = item.value.shape
        if len(shape) == 2:
            named.setdefault(shape[0], f"{item.name}.shape[0]" + (", the batch size" if first_batch else ""))
            named.setdefault(shape[1], f"{item.name}.shape[1]")
            first_batch = False
        if item.value.size > 1:
            named.setdefault(item.value.size, f"{item.name}.size")
    if want.size > 1:
        named.setdefault(want.size, "the number of elements")
    return [(n, why) for n, why in sorted(named.items()) if n > 2]


def _named_ratio(got, want, inputs, atol) -> Diagnosis | None:
    if not np.any(want):
        return None
    yours, ones = ("your value is", "one") if want.size == 1 else ("your values are", "ones")
    simple = {2.0: f"twice the expected {ones}", 0.5: f"half the expected {ones}",
              -1.0: f"the negative of the expected {ones} (a sign flip)"}
    for factor, words in simple.items():
        if _fits(got, factor * want, atol):
            return Diagnosis(f"{yours} exactly {words}.", "sign" if factor == -1.0 else "ratio")
    for n, why in counts(want, inputs):
        if _fits(got, n * want, atol):
            return Diagnosis(f"{yours} exactly {n} times the expected {ones} ({n} is {why}).", "ratio")
        if _fits(got, want / n, atol):
            return Diagnosis(f"{yours} exactly 1/{n} of the expected {ones} ({n} is {why}).", "ratio")
    return None


def _other_ratio(got, want, atol) -> Diagnosis | None:
    """A constant factor that is no count: claimed only with two or more entries to show it."""
    if np.count_nonzero(np.abs(want) > atol) < 2:
        return None
    c = float(np.sum(got * want) / np.sum(want * want))
    if np.isfinite(c) and c != 0.0 and not np.isclose(c, 1.0, rtol=MATCH_RTOL) and _fits(got, c * want, atol):
        return Diagnosis(f"every value is {_number(c)} times the expected one: a constant factor is off.", "ratio")
    return None


def _difference(got, want, inputs, atol) -> Diagnosis | None:
    """got - want equals an input (or its negative), also broadcast as a row or a column."""
    diff = got - want
    if diff.size < 2:
        return None
    for item in inputs:
        value = item.value
        if value.size < 2 or value.dtype.kind not in "biuf":
            continue
        candidates = [value]
        if value.ndim == 1 and diff.ndim == 2 and value.shape[0] == diff.shape[0] != diff.shape[1]:
            candidates.append(value[:, None])  # one value per row, broadcast as a column
        for candidate in candidates:
            try:
                spread = np.broadcast_to(candidate.astype(np.float64), diff.shape)
            except ValueError:
                continue
            if not np.any(np.abs(spread) > atol):
                continue
            if _fits(diff, spread, atol):
                return Diagnosis(f"your values are the expected ones plus {item.name} "
                                 f"({item.name} added once too often?).", "difference")
            if _fits(diff, -spread, atol):
                return Diagnosis(f"your values are the expected ones minus {item.name} "
                                 f"({item.name} left out?).", "difference")
            c = float(np.sum(diff * spread) / np.sum(spread * spread))
            if np.isfinite(c) and c != 0.0 and _fits(diff, c * spread, atol):
                return Diagnosis(f"your values differ from the expected ones by exactly {_number(c)} x {item.name} "
                                 f"(a term with {item.name} is off?).", "difference")
    return None


def _offset(got, want, atol) -> Diagnosis | None:
    diff = got - want
    if diff.size < 2:
        return None
    if _fits(diff, np.full_like(diff, diff.flat[0]), atol):
        return Diagnosis(f"every value is off by the same amount, {_number(float(diff.flat[0]))}.", "offset")
    if diff.ndim == 2 and diff.shape[0] >= 2 and diff.shape[1] >= 2:
        if _fits(diff, np.broadcast_to(diff[:1], diff.shape), atol):
            return Diagnosis("your values differ from the expected ones by the same row vector in every row "
                             "(something broadcast over the batch is off).", "row offset")
        if _fits(diff, np.broadcast_to(diff[:, :1], diff.shape), atol):
            return Diagnosis("your values differ from the expected ones by one constant per row "
                             "(a per-row quantity, such as a row's sum or maximum, is off).", "column offset")
    return None


def diagnose(got: np.ndarray, want: np.ndarray, inputs: Sequence[Input] = (), rtol: float = 1e-5,
             atol: float = 1e-7) -> Diagnosis:
    """One sentence on how ``got`` differs from ``want`` (same shape, numeric, not all close)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    inputs = [Input(i.name, np.asarray(i.value)) for i in inputs]
    bad = ~np.isfinite(got)
    if bad.any():
        where = _rows(bad) if got.ndim >= 1 else ""
        what = "NaN" if np.isnan(got).all() or (np.isnan(got) == bad).all() else "NaN or inf"
        if got.ndim >= 1 and bad.all():
            return Diagnosis(f"every value is {what}; expected finite values.", "non-finite")
        return Diagnosis(f"contains {what}{' in ' + where if where else ''}; expected finite values "
                         f"(an overflow in exp, or a log of 0, there?).", "non-finite")
    tol = max(atol, 1e-12)
    if got.ndim == 2 and got.shape[0] == got.shape[1] >= 2 and not _fits(got, want, tol) and _fits(got, want.T, tol):
        return Diagnosis("your result is the transpose of the expected one: check which axis is which.", "transposed")
    if not np.any(got) and np.any(want):
        return Diagnosis("your values are all zero.", "zeros")
    for step in (lambda: _named_ratio(got, want, inputs, tol), lambda: _difference(got, want, inputs, tol),
                 lambda: _other_ratio(got, want, tol), lambda: _offset(got, want, tol)):
        found = step()
        if found is not None:
            return found
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    wrong = int(close.size - np.count_nonzero(close))
    index = np.unravel_index(np.argmin(close), close.shape) if close.ndim else ()
    where = _index(index)
    of = f" ({wrong} of {close.size} entries differ)" if close.size > 1 else ""
    return Diagnosis(f"values are wrong{where}: expected {_number(float(want[index]))}, "
                     f"got {_number(float(got[index]))}{of}.")


def shape_hint(got_shape: tuple, want_shape: tuple) -> str:
    """A wrong shape, and what the two shapes have in common."""
    hint = f"has shape {got_shape}; expected {want_shape}."
    if len(got_shape) == 2 and got_shape == want_shape[::-1] and got_shape != want_shape:
        return hint + " Transposed?"
    if tuple(d for d in got_shape if d != 1) == tuple(d for d in want_shape if d != 1):
        return hint + " An extra or missing axis of length 1 (keepdims, or a reshape)?"
    if len(got_shape) == len(want_shape) + 1 and got_shape[1:] == want_shape:
        return hint + f" One axis too many: the first, of length {got_shape[0]}, should be summed or averaged away?"
    if int(np.prod(got_shape)) == int(np.prod(want_shape)):
        return hint + " Same number of elements: check which axis is which."
    return hint
