"""Imported by the grading workers' server before it forks any worker (``autograde``).

Every submission is graded in a fresh worker forked from that server, so whatever a worker
would do once and keep (probing whether this machine can isolate and has control groups,
SciPy and the other libraries the judges use) it would otherwise redo for every submission:
about a third of a second each on notebook 02, more than its sandbox takes.
"""
from grader import sandbox
from grader.sandbox import cgroups

sandbox.can_isolate()
cgroups.available()
