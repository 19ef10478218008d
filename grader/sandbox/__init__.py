"""The sandbox and its protocol: where a learner's notebook runs, and the only way numbers leave it.

- ``runner``: starts the harness isolated and limited, and survives whatever it does.
- ``box``: one submission's sandbox on the host, set up and torn down in one place (scratch tmpfs,
  control group); ``cgroups``: the control group that limits and kills all its processes together.
- ``events``: the harness's event lines, validated field by field before anything believes them.
- ``jail``: builds the chroot, drops privileges and applies the limits (a script, run by ``runner``).
- ``harness``: runs inside the sandbox; executes the notebook and calls the learner's functions.
  It imports nothing from ``grader`` (the sandbox cannot see the package).
- ``calls``: calls as JSON plus arrays, the form in which they cross into the sandbox.
- ``failures``: the names of the sandbox's own failure kinds (a time-out, a dead process...).
"""
from .runner import SANDBOX_UID_BASE, Limits, RunResult, can_isolate, read_regular_file, run

__all__ = ["SANDBOX_UID_BASE", "Limits", "RunResult", "can_isolate", "read_regular_file", "run"]
