"""The course's machinery, in parts that can be read on their own.

- ``checking``: what a notebook is checked against (exercise specifications, oracles, the judge).
- ``sandbox``: where a learner's notebook runs, and the protocol that brings numbers back.
- ``grading``: grading one notebook and a whole class (nbgrader's gradebook, feedback, exports).
- ``notebook``: the ``check`` that test cells call inside a learner's notebook.
- ``course``: where things are in a course folder.
- ``cli``: the ``grader`` command line, a thin layer over the parts above.

Apart from grading, used only when the site is built: ``site`` (MkDocs hooks, translations,
glossary) and ``catalogue`` (resources.yaml: load and validate, cite, render, check links).
"""

__version__ = "0.1.0"
