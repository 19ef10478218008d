"""The ``grader`` command line: a thin layer over the modules that do the work.

Every command turns a domain failure (a bad file, folder, assignment or gradebook) into one
line on stderr, ``grader COMMAND: WHAT: PROBLEM``, and exit status 2; a traceback means a bug.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.grading import startup  # noqa: F401 - first, before anything imports nbformat (see there)


def _root(args) -> Path:
    from .course import find_root
    return Path(args.course_dir).resolve() if args.course_dir else find_root()


def _db(args) -> str:
    from grader.grading.gradebook import default_db_url
    return args.db or default_db_url(_root(args))


def _check(args) -> int:
    from grader.grading import check as checkcmd
    return checkcmd.run_many(args.notebook, as_json=args.json, seed=args.seed)


def _release(args) -> int:
    from grader.grading.release import release
    for path in release(_root(args), only=args.assignment or None):
        print(f"released {path}")
    return 0


def _autograde(args) -> int:
    from grader.grading.autograde import Overrides, autograde
    from grader.grading.results import class_summary, format_table, to_json

    overrides = Overrides(args.cell_timeout, args.notebook_timeout,
                          int(args.memory_gb * (1 << 30)) if args.memory_gb else None)
    runner = None
    if args.scheduler:
        from grader.grading.cluster import dask_runner
        runner = dask_runner(args.scheduler)
    outcomes = autograde(_root(args), args.assignment, Path(args.submissions), _db(args), jobs=args.jobs,
                         pattern=args.pattern, overrides=overrides, progress=not args.quiet, runner=runner)
    if args.json:
        print(to_json(class_summary(outcomes)))
    else:
        rows = [("student", "score", "status", "notes")]
        rows += [(o.student, f"{o.score:g}/{o.max_score}", o.status, "; ".join(o.notes)) for o in outcomes]
        print(format_table(rows))
        graded = sum(o.status in ("graded", "failed") for o in outcomes)
        print(f"{len(outcomes)} submissions: {graded} graded now, {len(outcomes) - graded} unchanged since last run")
    failed = [o for o in outcomes if o.failure]
    if failed:
        print(f"grader autograde: the grader failed on {len(failed)} submission(s), recorded with 0 points: "
              + "; ".join(f"{o.student}: {o.failure}" for o in failed[:3]) + ("; ..." if len(failed) > 3 else ""),
              file=sys.stderr)
        return 1
    return 0


def _feedback(args) -> int:
    from grader.grading.feedback import generate
    written = generate(_root(args), args.assignment)
    print(f"wrote {len(written)} feedback files under {_root(args) / 'feedback'}")
    return 0


def _export(args) -> int:
    from grader.grading.export import export
    grades, breakdown = export(_root(args), args.assignment, _db(args), args.output)
    print(f"wrote {grades}\nwrote {breakdown}")
    return 0


def _report(args) -> int:
    from grader.grading import report
    from grader.grading.results import format_table, to_json
    root = _root(args)
    stats, totals, max_score = report.collect(root, args.assignment)
    png = report.histogram(totals, max_score, Path(args.output or root / "reports" / args.assignment) / "scores.png",
                           f"{args.assignment}: {len(totals)} students")
    if args.json:
        print(to_json({"students": len(totals), "mean_total": sum(totals) / len(totals), "max_score": max_score,
                       "histogram": str(png), "exercises": [vars(s) for s in stats]}))
        return 0
    rows = [("notebook", "exercise", "mean", "passed", "most common hint")]
    rows += [(s.notebook, s.name, f"{s.mean:.2f}/{s.max_points}", f"{s.passed_share:.0%}",
              f"{s.common_hint} ({s.common_hint_count}x)" if s.common_hint else "") for s in stats]
    print(format_table(rows))
    print(f"{len(totals)} students, mean total {sum(totals) / len(totals):.2f}/{max_score}; histogram: {png}")
    return 0


def _similarity(args) -> int:
    from grader.grading import similarity
    from grader.grading.results import format_table
    root = _root(args)
    matches, cells = similarity.find_copies(root, args.assignment, args.threshold)
    report = similarity.write_html(matches, cells, Path(args.output or root / "reports" / args.assignment)
                                   / "similarity.html", args.assignment)
    if args.json:
        print(similarity.as_json(matches, report))
        return 0
    rows = [("submission", "matches", "score", "matching cells")]
    rows += [(m.a, m.b, f"{m.score:.0%}", ", ".join(f"{c} ({s:.0%})" for c, s in m.cells)) for m in matches]
    print(format_table(rows))
    print(f"{len(matches)} pair(s) at or above {args.threshold:.0%}; side by side: {report}")
    return 0


def _resources(args) -> int:
    from grader.catalogue import command
    return command.main(args.rest, prog="grader resources")


def _domain_errors() -> tuple[type[BaseException], ...]:
    """What a command may meet in a bad course, submission or gradebook (not a bug)."""
    from sqlalchemy.exc import SQLAlchemyError  # nbgrader's gradebook: a bad --db URL or server

    # ValueError covers UnusableNotebook, SubmissionsError, CourseError and CatalogueError.
    return (ValueError, OSError, SQLAlchemyError)


def _one_line(error: BaseException, args) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    problem = lines[0] if lines else type(error).__name__
    if isinstance(error, SQLAlchemyError):
        try:
            where = make_url(_db(args)).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 (a URL that does not even parse: say so without it)
            where = "the gradebook URL"
        return f"{where}: {problem}"
    return problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Check, release and autograde the course's notebooks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def course_options(p):
        p.add_argument("--course-dir", help="course folder (default: the one holding nbgrader_config.py)")
        p.add_argument("--db", help="gradebook URL (default: sqlite:///COURSE/gradebook.db, or $GRADER_DB_URL)")

    p = sub.add_parser("check", help="grade notebooks and print a table of exercises (and of the course)",
                       description="Execute a learner's notebooks in the sandbox and print, per exercise, the points, "
                                   "pass or fail, and a hint; with several notebooks or a folder, then a summary of "
                                   "the course and the next exercise to work on. Exit 0: all pass; 1: something "
                                   "fails; 2: unusable input.")
    p.add_argument("notebook", nargs="+", help="a .ipynb file, several, or folders of them (e.g. notebooks/)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--seed", type=int, default=None, help="seed of the hidden inputs (default: fresh)")
    p.set_defaults(run=_check)

    p = sub.add_parser("release", help="generate notebooks/ from solutions/ (nbgrader generate_assignment)")
    p.add_argument("assignment", nargs="*", help="assignments to release (default: all)")
    p.add_argument("--course-dir", help="course folder (default: the one holding nbgrader_config.py)")
    p.set_defaults(run=_release)

    p = sub.add_parser("autograde", help="grade every submission of an assignment, in parallel",
                       description="Grade SUBMISSIONS (nbgrader's submitted/<student>/<assignment>/ folder, or a folder "
                                   "or zip of LMS downloads) into the gradebook. Re-running grades only new or changed "
                                   "submissions.")
    p.add_argument("assignment")
    p.add_argument("submissions")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: number of cores)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (tcp://HOST:PORT) to grade on a cluster")
    p.add_argument("--pattern", help="regex with a student_id group for LMS file names (default: text before the first _)")
    p.add_argument("--cell-timeout", type=float, help="seconds one cell may run (default: the notebook's own)")
    p.add_argument("--notebook-timeout", type=float, help="seconds one notebook may run (default: the notebook's own)")
    p.add_argument("--memory-gb", type=float, help="address-space limit per notebook in GiB")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    course_options(p)
    p.set_defaults(run=_autograde)

    p = sub.add_parser("feedback", help="one HTML feedback file per student per notebook")
    p.add_argument("assignment")
    course_options(p)
    p.set_defaults(run=_feedback)

    p = sub.add_parser("export", help="grades.csv (nbgrader's format) and a per-exercise breakdown CSV")
    p.add_argument("assignment")
    p.add_argument("--output", help="folder for the CSV files (default: COURSE/exports/ASSIGNMENT)")
    course_options(p)
    p.set_defaults(run=_export)

    p = sub.add_parser("report", help="per-exercise statistics and a histogram of total scores")
    p.add_argument("assignment")
    p.add_argument("--output", help="folder for scores.png (default: COURSE/reports/ASSIGNMENT)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    course_options(p)
    p.set_defaults(run=_report)

    p = sub.add_parser("similarity", help="submissions whose answers copy the reference solutions or each other",
                       description="Compare the answer cells of every graded submission of ASSIGNMENT with the "
                                   "course's reference solutions and with each other, after normalisation (names, "
                                   "formatting, comments and docstrings do not hide a copy). For the instructor: "
                                   "nothing of it reaches the learners' feedback.")
    p.add_argument("assignment")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="list pairs whose substantial code matches at least this share (default: 0.5)")
    p.add_argument("--output", help="folder for similarity.html (default: COURSE/reports/ASSIGNMENT)")
    p.add_argument("--json", action="store_true", help="print the pairs as JSON")
    course_options(p)
    p.set_defaults(run=_similarity)

    p = sub.add_parser("resources", help="validate resources.yaml (and check its links with --online)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=_resources)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    from grader.grading.release import tool_env
    os.environ["PATH"] = tool_env()["PATH"]  # nbgrader's gradebook runs `alembic` from our environment
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["resources"]:  # its own options (argparse's REMAINDER drops leading ones)
        return _resources(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:
        if not isinstance(error, _domain_errors()):
            raise
        print(f"grader {args.command}: {_one_line(error, args)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
