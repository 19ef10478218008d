"""The course's machinery: exercise specifications, a sandboxed trusted grader, and nbgrader glue.

The modules, each with one job:

- ``spec``: what an exercise is (the learner's function, the calls that test it, known mistakes).
- ``oracles``: independent reference mathematics the answers are compared with.
- ``exercises``: the exercises of each notebook.
- ``judge``: turns a learner's outputs into a verdict with a hint that names the mistake.
- ``notebook``: the ``check`` used by the test cells inside a learner's notebook.
- ``harness``: runs inside the sandbox; executes a notebook and calls the learner's functions.
- ``sandbox``: starts the harness isolated and limited, and survives whatever it does.
- ``grading``: grades one notebook (the pure task: submission in, verdicts out).
- ``cli``: the ``grader`` command line.
"""

__version__ = "0.1.0"
