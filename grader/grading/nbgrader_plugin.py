"""``TrustedExecute``: the trusted grader as a step of nbgrader's own autograde pipeline.

nbgrader_config.py puts it where nbgrader's ``Execute`` would be, so plain
``nbgrader autograde`` also decides scores outside the student's kernel; ``SaveAutoGrades``,
next in the pipeline, records them from the test cells' outputs.
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from grader.checking import exercises
from grader.course import find_root, release_notebook, stable_seed
from .grade import grade_notebook


class TrustedExecute(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        name, student = info["notebook"], info["student"]
        try:
            spec = exercises.notebook_spec(name)
        except KeyError:
            raise ValueError(f"no exercises are defined for notebook {name!r}") from None
        root = find_root(Path.cwd())
        graded = grade_notebook(nb, release_notebook(root, name), spec, seed=stable_seed(info["assignment"], student, name))
        for note in graded.notes:
            self.log.warning("%s/%s: %s", student, name, note)
        return graded.notebook, resources
