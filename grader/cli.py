"""The ``grader`` command line: a thin layer over the modules that do the work."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _check(args) -> int:
    from . import checkcmd
    return checkcmd.run(args.notebook, as_json=args.json, seed=args.seed)


def _release(args) -> int:
    from .course import find_root
    from .release import release
    for path in release(find_root(), only=args.assignment or None):
        print(f"released {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Check, release and autograde the course's notebooks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="grade one notebook and print a table of exercises",
                           description="Execute a learner's notebook in the sandbox and print, per exercise, the points, "
                                       "pass or fail, and a hint. Exit 0: all pass; 1: something fails; 2: unusable input.")
    check.add_argument("notebook", help="path to the .ipynb file")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.add_argument("--seed", type=int, default=None, help="seed of the hidden inputs (default: fresh)")
    check.set_defaults(run=_check)

    rel = sub.add_parser("release", help="generate notebooks/ from solutions/ (nbgrader generate_assignment)")
    rel.add_argument("assignment", nargs="*", help="assignments to release (default: all)")
    rel.set_defaults(run=_release)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
