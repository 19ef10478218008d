"""``grader similarity``: which submissions copied the course's reference solutions or each other.

The course is open and its solutions are public by design, so copying cannot be prevented;
it can be told to the instructor. Each answer cell is reduced to what a copy keeps whatever
its disguise: Python's syntax tree (formatting and comments gone), without docstrings, with
every name the learner chose replaced by its order of first appearance (``v0``, ``v1``...)
while library names (``np.maximum``) and builtins stay. Two cells are compared by the
overlap of their token 5-grams; a pair of notebooks scores the share of their substantial
code (cells of at least ``MIN_TOKENS`` tokens: a one-line ``np.maximum(z, 0)`` is what every
correct answer looks like, not a copy) that sits in matching cells.

The report goes to the instructor only: the command's table or JSON and
``reports/<assignment>/similarity.html``; nothing of it reaches a learner's feedback.
"""
from __future__ import annotations

import ast
import builtins
import html
import io
import json
import keyword
import tokenize
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import nbformat

from .notebooks_io import MAX_CELL_CHARS, grade_id, is_answer, read_notebook

REFERENCE = "(reference solution)"
MIN_TOKENS = 40          # a cell shorter than this (normalised) proves nothing either way
CELL_MATCH = 0.8         # two cells match when this share of their 5-grams is common
NGRAM = 5
DEFAULT_THRESHOLD = 0.5  # pairs listed when this share of their substantial code matches
_KEPT = frozenset(dir(builtins)) | {"self", "cls"}


class _Canonical(ast.NodeTransformer):
    """Names the cell binds (arguments, variables, its functions) become v0, v1... in order of
    first appearance; the names it only uses (``np``, another exercise's function) stay."""

    def __init__(self, tree: ast.AST):
        self.names: dict[str, str] = {}
        self.bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
                      and isinstance(node.ctx, (ast.Store, ast.Del))}
        self.bound |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
        self.bound |= {node.name for node in ast.walk(tree)
                       if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        self.bound -= _KEPT

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}") if name in self.bound else name

    def visit_Name(self, node):
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node

    def _body(self, node):
        node.body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                  and isinstance(s.value.value, str))] or [ast.Pass()]
        return node

    def visit_Module(self, node):
        self.generic_visit(self._body(node))
        return node

    def visit_FunctionDef(self, node):
        node.name = self._rename(node.name)
        node.returns = None
        self.generic_visit(self._body(node))
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.name = self._rename(node.name)
        self.generic_visit(self._body(node))
        return node


def normalise(source: str) -> list[str]:
    """The token stream a copy keeps: see the module docstring. Code that does not parse is
    compared by its tokens without comments, names canonicalised all the same."""
    source = source[:MAX_CELL_CHARS]
    try:
        tree = ast.parse(source)
        text, parsed = ast.unparse(_Canonical(tree).visit(tree)), True
    except (SyntaxError, ValueError, RecursionError):
        text, parsed = source, False
    tokens: list[str] = []
    names: dict[str, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER):
                continue
            word = token.string
            if token.type == tokenize.NEWLINE:
                word = ";"
            elif token.type == tokenize.NAME and not parsed and not keyword.iskeyword(word) \
                    and word not in _KEPT and tokens[-1:] != ["."]:
                word = names.setdefault(word, f"v{len(names)}")
            tokens.append(word)
    except (tokenize.TokenError, SyntaxError):
        pass
    return tokens


def _ngrams(tokens: list[str]) -> frozenset[int]:
    return frozenset(hash(tuple(tokens[i:i + NGRAM])) for i in range(max(1, len(tokens) - NGRAM + 1)))


@dataclass
class Cells:
    """One notebook's answer cells: source as written, tokens and 5-grams, by grade_id."""

    owner: str
    source: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    grams: dict[str, frozenset[int]] = field(default_factory=dict)

    def add(self, cell_id: str, source: str) -> None:
        self.source[cell_id] = source
        self.tokens[cell_id] = normalise(source)
        self.grams[cell_id] = _ngrams(self.tokens[cell_id])


@dataclass
class Match:
    a: str
    b: str
    score: float                 # share of the pair's substantial code in matching cells
    cells: list[tuple[str, float]]  # (grade_id, similarity) of each matching cell


def cell_similarity(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def compare(x: Cells, y: Cells) -> Match:
    matched, total, cells = 0, 0, []
    for cell_id in sorted(set(x.tokens) & set(y.tokens)):
        tx, ty = x.tokens[cell_id], y.tokens[cell_id]
        if min(len(tx), len(ty)) < MIN_TOKENS:  # stubs, one-liners: every answer looks alike
            continue
        size = max(len(tx), len(ty))
        total += size
        similarity = cell_similarity(x.grams[cell_id], y.grams[cell_id])
        if similarity >= CELL_MATCH:
            matched += size
            cells.append((cell_id, similarity))
    return Match(x.owner, y.owner, matched / total if total else 0.0, cells)


def answer_sources(nb) -> dict[str, str]:
    return {gid: cell.source for cell in nb.cells if is_answer(cell) and (gid := grade_id(cell))}


def reference_sources(nb) -> dict[str, str]:
    """The solution notebook's answer cells as a learner who copied them would have them:
    nbgrader's solution markers removed."""
    return {gid: "\n".join(line for line in source.splitlines()
                           if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            for gid, source in answer_sources(nb).items()}


def find_copies(root: Path, assignment: str, threshold: float = DEFAULT_THRESHOLD
                ) -> tuple[list[Match], dict[str, Cells]]:
    """Pairs (submission and reference, or two submissions) whose score reaches ``threshold``."""
    autograded = sorted((root / "autograded").glob(f"*/{assignment}/*.ipynb"))
    if not autograded:
        raise ValueError(f"{assignment}: no graded submissions under {root / 'autograded'}: run grader autograde first")
    everything = Cells(REFERENCE)
    for name in sorted({path.name for path in autograded}):
        solution = root / "solutions" / assignment / name
        if solution.is_file():
            for gid, source in reference_sources(read_notebook(solution)).items():
                everything.add(f"{name}:{gid}", source)
    students: dict[str, Cells] = {}
    for path in autograded:
        student = path.parents[1].name
        cells = students.setdefault(student, Cells(student))
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - the grader wrote it; a damaged one is simply not compared
            continue
        for gid, source in answer_sources(nb).items():
            cells.add(f"{path.name}:{gid}", source)
    matches = [compare(cells, everything) for cells in students.values()]
    matches += [compare(x, y) for x, y in combinations(students.values(), 2)]
    found = [m for m in matches if m.cells and m.score >= threshold]
    found.sort(key=lambda m: (-m.score, m.a, m.b))
    return found, {**students, REFERENCE: everything}


def write_html(matches: list[Match], cells: dict[str, Cells], path: Path, assignment: str) -> Path:
    """Each listed pair with its matching cells side by side (the code as each one wrote it)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(assignment)}: similarity</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}"
             "td{vertical-align:top;border:1px solid #ccc;padding:4px;width:50%}pre{white-space:pre-wrap;margin:0}"
             "</style>", f"<h1>{html.escape(assignment)}: answer cells that match after normalisation</h1>",
             "<p>For the instructor only. Names, formatting, comments and docstrings are ignored; a high "
             "score says the code is the same, not who wrote it first.</p>"]
    if not matches:
        parts.append("<p>No pair reaches the threshold.</p>")
    for m in matches:
        parts.append(f"<h2>{html.escape(m.a)} and {html.escape(m.b)}: {m.score:.0%}</h2><table>")
        for cell_id, similarity in m.cells:
            left, right = cells[m.a].source.get(cell_id, ""), cells[m.b].source.get(cell_id, "")
            parts.append(f"<tr><th colspan=2>{html.escape(cell_id)} ({similarity:.0%})</th></tr>"
                         f"<tr><td><pre>{html.escape(left)}</pre></td><td><pre>{html.escape(right)}</pre></td></tr>")
        parts.append("</table>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def as_json(matches: list[Match], report: Path) -> str:
    return json.dumps({"report": str(report), "pairs": [
        {"a": m.a, "b": m.b, "score": round(m.score, 3),
         "cells": [{"cell": c, "similarity": round(s, 3)} for c, s in m.cells]} for m in matches]}, indent=2)

