"""Grading a notebook and a class: the pipeline from submissions to gradebook, feedback and reports.

- ``results``: the one shape of a result (exercise, notebook, submission), the manifest, the JSON printed.
- ``grade``: grades one notebook (submission in, verdicts and a graded notebook out).
- ``check``: ``grader check``, the learner's view of one notebook's grade.
- ``submissions``, ``notebooks_io``: finding submissions and fitting them to the assignment.
- ``autograde``, ``cluster``: grading a class, locally in parallel or on a Dask cluster.
- ``gradebook``, ``nbgrader_plugin``, ``release``: nbgrader's gradebook, its Autograde hook, releases.
- ``feedback``, ``export``, ``report``: what instructors and learners get back.
"""
