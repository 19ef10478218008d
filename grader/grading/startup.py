"""Imported first by the grading processes (``autograde``), to keep their start short.

Below nbformat, jsonschema imports ``rfc3987_syntax`` when it is installed, only to check one
string format ("iri") that no notebook schema uses; that import builds a parser and takes
1.4 s, paid by the grading process and again by its worker pool's server every time a class
is graded. Marking the module absent makes jsonschema leave that one format unchecked.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
