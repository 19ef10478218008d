"""Grading throughput: one class graded by plain ``nbgrader autograde`` and by ``grader autograde``.

The class: for every notebook that has a solution, a release and defined exercises right
now, one assignment, and students whose submissions are correct, partial (the first half of
the answers) or broken (a catalogued mistake in one answer, a syntax error in another),
built from solutions/ and notebooks/ as tests/sample_class.py does. Both graders get their
own copy of the course and gradebook, with each assignment already registered (untimed),
and grade the same files one assignment at a time:

- the baseline, nbgrader's default pipeline (``Execute`` runs the tests in the student's
  kernel), one submission after another, restored by a separate nbgrader_config.py;
- ``grader autograde --jobs N`` with N = the cores this process may use.

Then the two gradebooks are compared cell by cell; a difference is explained from the test
cell's output in nbgrader's autograded notebook. Last, the grader's cost per submission is
set against the bare cost of executing the same notebooks (``jupyter nbconvert --execute``).
When a target is missed, or with ``--profile``, the grader's fixed costs are measured one by one.

    python -m bench.grading [--quick] [--submissions N] [--jobs N] [--profile]

Class-size mode: N submissions of one notebook (of the same three kinds), the two graders'
wall time, seconds per submission, time to the first grade, and the grader's cost per
submission against bare execution, with the targets of each notebook (``CLASS_TARGETS``):

    python -m bench.grading --class N --notebook NAME [--cold]   # --cold: also without warm sandboxes
    python -m bench.grading --class-table                        # make bench's rows (CLASS_ROWS)
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from bench.__main__ import ROOT, SCRIPTS, CannotRun, print_table, report_cannot_run, run_timed, tool_env
from bench.notebooks import execute
from grader.course import copy_course

SPEEDUP_TARGET = 1.8     # on 2 cores, grader --jobs 2 against sequential nbgrader, same grades
OVERHEAD_TARGET = 1.3    # grader's cost per submission against executing the notebook bare
KINDS = ("correct", "partial", "correct", "broken", "correct", "partial", "correct", "broken", "partial", "correct")

# nbgrader 0.9's own Autograde.autograde_preprocessors, which the course's config replaces.
NBGRADER_DEFAULT_PIPELINE = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
BASELINE_CONFIG = f"""

# --- bench/grading.py: the baseline is nbgrader's default pipeline, tests run in the kernel ---
c.Autograde.autograde_preprocessors = {NBGRADER_DEFAULT_PIPELINE!r}
c.Execute.timeout = 120  # nbgrader's default of 30 s per cell would time out training cells on a busy machine
"""


# --- the class ----------------------------------------------------------------------------

def gradable_notebooks(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(notebooks to grade, notes on those skipped): a solution, a release and exercises needed."""
    from grader.checking import exercises

    defined = set(exercises.available())
    names, skipped = [], []
    for folder in sorted(p for p in (root / "solutions").iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = folder.name
        if not (folder / f"{name}.ipynb").is_file():
            continue
        if not (root / "notebooks" / name / f"{name}.ipynb").is_file():
            skipped.append(f"{name}: skipped, no release in notebooks/ yet")
        elif name not in defined:
            skipped.append(f"{name}: skipped, no exercises defined in grader.exercises yet")
        else:
            names.append(name)
    return names, skipped


def _answers(nb) -> dict[str, nbformat.NotebookNode]:
    from grader.grading.notebooks_io import grade_id, is_answer
    return {grade_id(c): c for c in nb.cells if is_answer(c) and grade_id(c)}


def make_variant(name: str, kind: str, root: Path = ROOT) -> nbformat.NotebookNode:
    """The learner's release with answers from the solution: all (correct), the first half
    (partial), or all with a catalogued mistake in the first exercise that has one and a
    syntax error in the last answer (broken)."""
    from grader.checking import exercises

    solution = _answers(nbformat.read(root / "solutions" / name / f"{name}.ipynb", as_version=4))
    nb = nbformat.read(root / "notebooks" / name / f"{name}.ipynb", as_version=4)
    answers = _answers(nb)
    order = list(answers)
    fill = order[: math.ceil(len(order) / 2)] if kind == "partial" else order
    for gid in fill:
        answers[gid].source = solution[gid].source
    if kind == "broken":
        last = order[-1]
        answers[last].source += "\nthis line is not Python\n"
        wrong = next((e for e in exercises.notebook_spec(name).exercises
                      if e.mistakes and e.answer_id in answers and e.answer_id != last), None)
        if wrong is not None:
            answers[wrong.answer_id].source = wrong.mistakes[0].inject
    return nb


@dataclass
class Class:
    """Who submitted what: assignment -> {student: kind}, and where each variant's file is."""

    kinds: dict[str, dict[str, str]]
    variants: dict[tuple[str, str], Path]

    @property
    def size(self) -> int:
        return sum(len(students) for students in self.kinds.values())


def build_class(names: list[str], submissions: int, scratch: Path, kinds_cycle: tuple[str, ...] = KINDS) -> Class:
    """At least ``submissions`` submissions, spread evenly over the assignments."""
    per_assignment = max(1, math.ceil(submissions / len(names)))
    kinds, variants = {}, {}
    for j, name in enumerate(names):
        kinds[name] = {f"s{i + 1:02d}": kinds_cycle[(i + j) % len(kinds_cycle)] for i in range(per_assignment)}
        for kind in sorted(set(kinds[name].values())):
            path = scratch / "variants" / name / kind / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(make_variant(name, kind), path)
            variants[name, kind] = path
    return Class(kinds, variants)


def make_course(folder: Path, the_class: Class, baseline: bool) -> Path:
    """A copy of the course with the class in nbgrader's submitted/<student>/<assignment>/ layout."""
    copy_course(folder)
    if baseline:
        with open(folder / "nbgrader_config.py", "a", encoding="utf-8") as config:
            config.write(BASELINE_CONFIG)
    for assignment, students in the_class.kinds.items():
        for student, kind in students.items():
            target = folder / "submitted" / student / assignment
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(the_class.variants[assignment, kind], target / f"{assignment}.ipynb")
    return folder


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


# --- the two graders ------------------------------------------------------------------------

def register(courses: list[Path], assignments: list[str]) -> None:
    """Put each assignment into the first course's gradebook (what generate_assignment leaves an
    instructor with) and copy that gradebook to the others: untimed, the same for both graders."""
    from grader.grading.gradebook import ensure_assignment
    from grader.grading.release import tool_env as grader_env

    os.environ["PATH"] = grader_env()["PATH"]  # nbgrader runs `alembic` by name
    first, *others = courses
    for assignment in assignments:
        ensure_assignment(first, db_url(first), assignment)
    for course in others:
        shutil.copy(first / "gradebook.db", course / "gradebook.db")


def nbgrader_command(assignment: str) -> list[str]:
    return [str(SCRIPTS / "nbgrader"), "autograde", assignment, "--log-level=WARN"]


def grader_command(course: Path, assignment: str, jobs: int) -> list[str]:
    return [str(SCRIPTS / "grader"), "autograde", assignment, str(course / "submitted"),
            "--jobs", str(jobs), "--course-dir", str(course), "--quiet", "--json"]


def time_nbgrader(course: Path, assignment: str) -> float:
    return run_timed(nbgrader_command(assignment), f"nbgrader autograde {assignment} (in {course})", cwd=course)[0]


def time_grader(course: Path, assignment: str, jobs: int) -> float:
    return run_timed(grader_command(course, assignment, jobs), f"grader autograde {assignment} --jobs {jobs}",
                     cwd=course)[0]


def time_to_first_grade(cmd: list[str], course: Path, assignment: str, what: str,
                        env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, seconds until the first autograded notebook was written) of ``cmd``.

    Both graders write a submission's autograded notebook when they are done with it (and
    its grade to the gradebook right after): its appearance is when an instructor could
    first see a grade. Polled every 50 ms, so the figure is good to about that.
    """
    pattern = f"autograded/*/{assignment}/*.ipynb"
    first = None
    # Its output goes to a file, not a pipe: nobody reads a pipe while we poll, and a full one
    # would stop the grader mid-class.
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        try:
            process = subprocess.Popen(cmd, cwd=course, env=env or tool_env(), stdout=output, stderr=output)
        except OSError as error:
            raise CannotRun(f"{what}: {error}") from None
        while process.poll() is None:
            if first is None and next(course.glob(pattern), None) is not None:
                first = time.perf_counter() - started
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        output.seek(0)
        errors = output.read()
    if process.returncode != 0:
        tail = errors.strip().splitlines()[-15:]
        raise CannotRun(f"{what}: exit status {process.returncode}\n  " + "\n  ".join(tail))
    return seconds, first if first is not None else seconds


# --- comparing the gradebooks ---------------------------------------------------------------

def compare(baseline: Path, graded: Path, the_class: Class) -> tuple[int, list[str]]:
    """(submissions with identical grades, one explained line per submission that differs)."""
    from grader.grading.gradebook import scores

    same, differences = 0, []
    for assignment, students in the_class.kinds.items():
        ours, theirs = scores(db_url(graded), assignment), scores(db_url(baseline), assignment)
        for student, kind in students.items():
            mine, base = ours.get(student), theirs.get(student)
            if mine is None or base is None:
                raise CannotRun(f"{assignment}/{student}: missing from the "
                                f"{'grader' if mine is None else 'nbgrader'} gradebook")
            if mine == base:
                same += 1
                continue
            cells = sorted(c for c in set(mine) | set(base) if mine.get(c) != base.get(c))
            reasons = [f"{c} {base.get(c, 0):g} vs {mine.get(c, 0):g}: {_why(baseline, student, assignment, c)}"
                       for c in cells]
            differences.append(f"{assignment}/{student} ({kind}): nbgrader {sum(base.values()):g}, "
                               f"grader {sum(mine.values()):g}; " + "; ".join(reasons))
    return same, differences


def _why(course: Path, student: str, assignment: str, cell_id: str) -> str:
    """What nbgrader saw in that test cell, read from its autograded notebook."""
    from grader.grading.notebooks_io import grade_id

    path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    try:
        cell = next(c for c in nbformat.read(path, as_version=4).cells if grade_id(c) == cell_id)
    except (OSError, StopIteration, ValueError):
        return "no autograded cell to explain it"
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return f"in the kernel the test raised {output.ename}: {str(output.evalue)[:120]}"
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            first = output.text.strip().splitlines()[0] if output.text.strip() else ""
            return f"nbgrader scores a test cell that wrote to stderr 0 (it wrote: {first[:120]!r})"
    return "the test cell passed in the kernel; the trusted grader's fresh hidden inputs did not"


# --- the limit: executing the same notebooks bare -------------------------------------------

def bare_seconds(the_class: Class, scratch: Path) -> dict[tuple[str, str], float]:
    """``jupyter nbconvert --execute`` seconds for each distinct submission (assignment, kind)."""
    out = scratch / "executed"
    out.mkdir(exist_ok=True)
    return {key: execute(path, out, allow_errors=True) for key, path in sorted(the_class.variants.items())}


# --- where the grader's time goes -------------------------------------------------------------

def _time_python(code: str, isolated: bool = True) -> float:
    cmd = [sys.executable, *(["-I"] if isolated else []), "-c", code]
    return run_timed(cmd, f"python -c {code!r}")[0]


def _imports_grader(_task: int) -> int:
    import grader.grading.autograde  # noqa: F401 (what a worker imports to unpickle its first task)
    return os.getpid()


def _forkserver_start(jobs: int) -> float:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(_imports_grader, range(jobs)))
    return time.perf_counter() - started


def profile(graded: Path, the_class: Class, jobs: int, scratch: Path) -> list[tuple]:
    """The grader's costs one at a time: rows of (stage, seconds, how often it is paid)."""
    from grader import sandbox
    from grader.grading.autograde import Overrides, grade_submission, make_task
    from grader.grading.gradebook import ensure_assignment, record
    from grader.grading.submissions import Submission

    rows = [("stage", "seconds", "paid")]
    rows.append(("python start (-I, nothing imported)", f"{_time_python('pass'):.2f}", "per sandbox run"))
    rows.append(("  + import numpy", f"{_time_python('import numpy'):.2f}", "per sandbox run"))
    ipython = "import numpy; from IPython.core.interactiveshell import InteractiveShell; InteractiveShell.instance()"
    rows.append(("  + import IPython, make the shell", f"{_time_python(ipython):.2f}", "per sandbox run"))
    if sandbox.can_isolate():
        unshare = run_timed(["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "true"], "unshare")[0]
        rows.append(("unshare namespaces (isolation)", f"{unshare:.2f}", "per sandbox run"))
    cli = "import grader.cli, grader.grading.autograde, nbgrader.api, nbgrader.preprocessors"
    rows.append(("grader CLI imports (incl. nbgrader)", f"{_time_python(cli, isolated=False):.2f}", "per assignment"))
    rows.append((f"forkserver pool, {jobs} workers importing grader", f"{_forkserver_start(jobs):.2f}", "per assignment"))
    assignment = next(iter(the_class.kinds))
    rerun = time_grader(graded, assignment, jobs)  # every manifest is current: nothing left to grade
    rows.append((f"grader autograde {assignment} again, nothing to grade", f"{rerun:.2f}",
                 "per assignment (CLI start, gradebook check, finding files)"))
    fresh = scratch / "fresh-gradebook.db"
    started = time.perf_counter()
    ensure_assignment(graded, f"sqlite:///{fresh}", assignment)
    rows.append((f"ensure_assignment on an empty gradebook ({assignment})", f"{time.perf_counter() - started:.2f}",
                 "once per assignment, first run"))
    started = time.perf_counter()
    ensure_assignment(graded, f"sqlite:///{fresh}", assignment)
    rows.append(("ensure_assignment, already registered", f"{time.perf_counter() - started:.2f}", "per assignment"))
    student = next(s for s, k in the_class.kinds[assignment].items() if k == "correct")
    autograded = nbformat.read(graded / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)
    started = time.perf_counter()
    record(f"sqlite:///{fresh}", assignment, "profile_student", {assignment: autograded})
    rows.append(("gradebook write (SaveAutoGrades), one notebook", f"{time.perf_counter() - started:.2f}",
                 "per submission"))
    for name in the_class.kinds:
        path = the_class.variants[name, "correct"] if (name, "correct") in the_class.variants else None
        if path is None:
            continue
        task = make_task(graded, name, Submission("profile", {name: path}), Overrides())
        started = time.perf_counter()
        outcome = grade_submission(task, slot=0)
        total = time.perf_counter() - started
        rows.append((f"grade one correct {name} in-process: sandbox", f"{outcome.notebooks[0].seconds:.2f}",
                     "per submission"))
        rows.append(("  + plan calls, judge, write outputs", f"{total - outcome.notebooks[0].seconds:.2f}",
                     "per submission"))
    return rows


# --- one notebook at the size of a real class -----------------------------------------------

# Throughput against sequential nbgrader on 2 cores, same grades; notebooks without one are
# measured and reported. Cost: the grader's seconds per submission per worker against bare
# execution of the same file.
CLASS_TARGETS = {"02_backprop": 6.0, "05_pytorch": 4.0, "07_gpt": 5.0}
CLASS_COST_TARGET = 0.5
# make bench's rows. 08 and 09 get smaller classes: nbgrader alone needs about 100 s and 55 s
# for each of their submissions (it runs the notebook's demonstrations, which the sandbox skips).
CLASS_ROWS = (("02_backprop", 60), ("05_pytorch", 60), ("07_gpt", 30), ("08_modern_decoder", 10),
              ("09_post_training", 10))


@dataclass
class ClassRun:
    name: str
    size: int
    nbgrader_seconds: float
    grader_seconds: float
    nbgrader_first: float  # seconds until the first grade was written
    grader_first: float
    bare_per_submission: float
    jobs: int
    same: int
    differences: list[str]
    cold_seconds: float | None = None  # the grader again with cold sandboxes (--cold)

    @property
    def ratio(self) -> float:
        return self.nbgrader_seconds / self.grader_seconds

    @property
    def cost(self) -> float:
        """The grader's seconds per submission per worker, as a multiple of bare execution."""
        return self.grader_seconds * self.jobs / self.size / self.bare_per_submission

    def missed(self) -> list[str]:
        target = CLASS_TARGETS.get(self.name)
        missed = [f"throughput {self.ratio:.2f}x < {target:g}x"] if target and self.ratio < target else []
        if self.cost > CLASS_COST_TARGET:
            missed.append(f"cost {self.cost:.2f}x bare > {CLASS_COST_TARGET}x")
        if self.differences:
            missed.append(f"{len(self.differences)} submission(s) graded differently")
        return missed


def grade_class(name: str, size: int, jobs: int, scratch: Path, cold: bool = False) -> tuple[ClassRun, Path, Class]:
    """``size`` submissions of notebook ``name`` graded by both graders (and cold, if asked)."""
    the_class = build_class([name], size, scratch)
    baseline = make_course(scratch / "nbgrader", the_class, baseline=True)
    graded = make_course(scratch / "grader", the_class, baseline=False)
    courses = [baseline, graded] + ([make_course(scratch / "grader-cold", the_class, baseline=False)] if cold else [])
    register(courses, [name])
    nb_seconds, nb_first = time_to_first_grade(nbgrader_command(name), baseline, name,
                                               f"nbgrader autograde {name} (in {baseline})")
    gr_seconds, gr_first = time_to_first_grade(grader_command(graded, name, jobs), graded, name,
                                               f"grader autograde {name} --jobs {jobs}")
    cold_seconds = None
    if cold:
        cold_seconds, _ = time_to_first_grade(grader_command(courses[2], name, jobs), courses[2], name,
                                              f"grader autograde {name} (cold sandboxes)",
                                              env=tool_env(GRADER_COLD_SANDBOX="1"))
    same, differences = compare(baseline, graded, the_class)
    bare = bare_seconds(the_class, scratch)
    bare_per = sum(bare[name, kind] for kind in the_class.kinds[name].values()) / size
    run = ClassRun(name, size, nb_seconds, gr_seconds, nb_first, gr_first, bare_per, jobs, same, differences,
                   cold_seconds)
    return run, graded, the_class


def class_table(rows: list[tuple[str, int]], jobs: int, cold: bool, profile_always: bool) -> int:
    title = f"Grading at class size: nbgrader autograde (sequential) vs grader autograde --jobs {jobs}"
    header = ("notebook", "class", "nbgrader s", "grader s", "throughput", "target", "s/sub nbgrader",
              "s/sub grader", "1st grade nbgrader", "1st grade grader", "cost vs bare", "met")
    table, notes, profiles = [header], [], []
    for name, size in rows:
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-class-{name}-"))
        try:
            run, graded, the_class = grade_class(name, size, jobs, scratch, cold)
            missed = run.missed()
            target = CLASS_TARGETS.get(name)
            table.append((name, size, f"{run.nbgrader_seconds:.1f}", f"{run.grader_seconds:.1f}", f"{run.ratio:.2f}x",
                          f">= {target:g}x" if target else "-", f"{run.nbgrader_seconds / size:.2f}",
                          f"{run.grader_seconds / size:.2f}", f"{run.nbgrader_first:.1f}", f"{run.grader_first:.1f}",
                          f"{run.cost:.2f}x", "no" if missed else "yes"))
            kinds = ", ".join(f"{list(the_class.kinds[name].values()).count(k)} {k}"
                              for k in sorted(set(the_class.kinds[name].values())))
            notes.append(f"{name}: {kinds}; grades identical (gradebooks compared cell by cell): {run.same}/{size}; "
                         f"bare execution {run.bare_per_submission:.2f} s per submission"
                         + (f"; cold sandboxes: grader {run.cold_seconds:.1f} s, warm {run.grader_seconds:.1f} s "
                            f"({run.cold_seconds / run.grader_seconds:.2f}x faster warm)" if run.cold_seconds else ""))
            notes += [f"  known difference: {line}" for line in run.differences]
            if missed:
                notes.append(f"  missed: {'; '.join(missed)} (where the time goes: below)")
            if missed or profile_always:
                profiles.append((name, profile(graded, the_class, jobs, scratch)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    notes += ["", f"throughput: nbgrader's wall time over the grader's for the same class; cost vs bare: the grader's "
              f"seconds per submission per worker (wall x {jobs} / class) over `jupyter nbconvert --execute` of the "
              f"same files (target <= {CLASS_COST_TARGET}x)"]
    print_table(title, table, notes)
    for name, rows_ in profiles:
        print_table(f"Where grader autograde spends its time on {name} (measured one stage at a time)", rows_)
    return 0


# --- the benchmark ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 submissions of the first notebook")
    parser.add_argument("--submissions", type=int, default=40, help="size of the class (spread over the notebooks)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="grader workers (default: cores)")
    parser.add_argument("--profile", action="store_true", help="measure the grader's fixed costs even if targets are met")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and print where it is")
    parser.add_argument("--class", dest="class_size", type=int, metavar="N",
                        help="class-size mode: N submissions of one notebook (--notebook)")
    parser.add_argument("--notebook", help="the notebook of the class-size mode, e.g. 05_pytorch")
    parser.add_argument("--class-table", action="store_true",
                        help="class-size mode for every row of make bench: " +
                        ", ".join(f"{n} x {name[:2]}" for name, n in CLASS_ROWS))
    parser.add_argument("--cold", action="store_true", help="class-size mode: also grade with cold sandboxes")
    args = parser.parse_args(argv)
    if args.class_size is not None or args.class_table:
        return _class_mode(args, parser)
    title = f"Grading throughput: nbgrader autograde (sequential) vs grader autograde --jobs {args.jobs}"
    scratch = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        return _run(args, title, scratch)
    except CannotRun as error:
        return report_cannot_run(title, error)
    finally:
        if args.keep:
            print(f"(scratch kept: {scratch})")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _class_mode(args, parser: argparse.ArgumentParser) -> int:
    title = "Grading at class size"
    names, skipped = gradable_notebooks()
    if args.class_table:
        rows = [(name, size) for name, size in CLASS_ROWS if name in names]
    else:
        if not args.notebook or args.class_size < 1:
            parser.error("--class N needs N >= 1 and --notebook NAME")
        if args.notebook not in names:
            return report_cannot_run(title, CannotRun(f"{args.notebook}: not a gradable notebook ({', '.join(names)}"
                                                      + (f"; {'; '.join(skipped)}" if skipped else "") + ")"))
        rows = [(args.notebook, args.class_size)]
    try:
        return class_table(rows, args.jobs, args.cold, args.profile)
    except CannotRun as error:
        return report_cannot_run(title, error)


def _run(args, title: str, scratch: Path) -> int:
    names, skipped = gradable_notebooks()
    if not names:
        raise CannotRun(f"{ROOT}: no notebook has a solution, a release and exercises")
    kinds_cycle = KINDS
    if args.quick:  # two correct submissions: one notebook to execute bare
        names, args.submissions, kinds_cycle = names[:1], 2, ("correct",)
    the_class = build_class(names, args.submissions, scratch, kinds_cycle)
    baseline = make_course(scratch / "nbgrader", the_class, baseline=True)
    graded = make_course(scratch / "grader", the_class, baseline=False)
    register([baseline, graded], names)

    rows = [("assignment", "submissions", "nbgrader s", "grader s", "speedup")]
    total_nb = total_gr = 0.0
    for name in names:
        nb_seconds = time_nbgrader(baseline, name)
        gr_seconds = time_grader(graded, name, args.jobs)
        total_nb, total_gr = total_nb + nb_seconds, total_gr + gr_seconds
        rows.append((name, len(the_class.kinds[name]), f"{nb_seconds:.1f}", f"{gr_seconds:.1f}",
                     f"{nb_seconds / gr_seconds:.2f}x"))
    n = the_class.size
    speedup = total_nb / total_gr
    rows.append(("all", n, f"{total_nb:.1f}", f"{total_gr:.1f}", f"{speedup:.2f}x"))
    rows.append(("seconds per submission", "", f"{total_nb / n:.2f}", f"{total_gr / n:.2f}", ""))

    same, differences = compare(baseline, graded, the_class)
    bare = bare_seconds(the_class, scratch)
    bare_per = sum(bare[a, kind] for a, students in the_class.kinds.items() for kind in students.values()) / n
    worker_per = total_gr * args.jobs / n

    kinds = {}
    for students in the_class.kinds.values():
        for kind in students.values():
            kinds[kind] = kinds.get(kind, 0) + 1
    notes = [f"class: {n} submissions over {len(names)} assignment(s) ({', '.join(names)}): "
             + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())),
             f"grades identical (gradebooks compared cell by cell): {same}/{n} submissions"]
    notes += [f"  known difference: {line}" for line in differences]
    notes += skipped
    notes += ["",
              f"bare execution (jupyter nbconvert --execute of the same files): {bare_per:.2f} s per submission",
              f"nbgrader per submission: {total_nb / n:.2f} s = {total_nb / n / bare_per:.2f}x bare",
              f"grader per submission per worker (wall x {args.jobs} jobs / {n}): {worker_per:.2f} s = "
              f"{worker_per / bare_per:.2f}x bare (target <= {OVERHEAD_TARGET}x: "
              f"{'met' if worker_per / bare_per <= OVERHEAD_TARGET else 'missed'})",
              f"speedup target >= {SPEEDUP_TARGET}x on 2 cores with the same grades: "
              f"{'met' if speedup >= SPEEDUP_TARGET and not differences else 'missed'}"
              + ("" if args.jobs == 2 else f" (this run used {args.jobs} jobs)"),
              "",
              f"grading speedup vs nbgrader: {speedup:.2f}x"]
    print_table(title, rows, notes)

    missed = speedup < SPEEDUP_TARGET or worker_per / bare_per > OVERHEAD_TARGET
    if args.profile or (missed and not args.quick):
        print_table("Where grader autograde spends its time (measured one stage at a time)",
                    profile(graded, the_class, args.jobs, scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
