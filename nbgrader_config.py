"""nbgrader configuration for the course, in one place.

solutions/ is nbgrader's source directory (instructors' notebooks with solutions and hidden
tests); notebooks/ is the release directory that learners open. Scores are decided by the
trusted grader (grader.grading.nbgrader_plugin.TrustedExecute) instead of nbgrader's Execute, which
would run the tests inside the student's own kernel.
"""
import os

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ai-foundations"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.db_url = os.environ.get("GRADER_DB_URL", "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db"))

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

c.Autograde.autograde_preprocessors = [
    "grader.grading.nbgrader_plugin.TrustedExecute",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
