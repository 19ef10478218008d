"""What a notebook is checked against: exercises, independent oracles, and the judge.

- ``spec``: what an exercise is (the learner's function, the calls that test it, known mistakes).
- ``oracles``: independent reference mathematics the answers are compared with.
- ``exercises``: the exercises of each notebook (one module per notebook).
- ``judge``: turns a learner's outputs into a verdict with a hint that names the mistake.
"""
