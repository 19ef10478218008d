"""Site build: how long ``mkdocs build`` takes and how large the built site is.

The build runs on every change (``make serve`` rebuilds on save, CI on every push), so its
time is what an author waits; the size is what a reader's browser may download, since
everything (KaTeX, fonts, scripts) ships inside the site. The site is built into a
temporary folder (``-d``), never over site/, without --strict: this measures, the tests
validate.

    python -m bench.site [--quick] [--repeats N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.__main__ import ROOT, SCRIPTS, CannotRun, print_table, report_cannot_run, run_timed

TINY_SITE = {"mkdocs.yml": "site_name: tiny\nnav:\n  - index.md\n", "docs/index.md": "# Tiny\n\nOne page.\n"}


def build(config: Path, output: Path) -> float:
    seconds, _ = run_timed([str(SCRIPTS / "mkdocs"), "build", "--quiet", "-f", str(config), "-d", str(output)],
                           f"mkdocs build -f {config}", cwd=config.parent)
    return seconds


def size_of(folder: Path) -> tuple[int, int, dict[str, int]]:
    """(bytes, files, bytes by kind: html, search index, assets) of everything under ``folder``."""
    total, files, kinds = 0, 0, {"HTML pages": 0, "search index": 0, "other (CSS, JS, fonts, images)": 0}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        total, files = total + size, files + 1
        if path.suffix == ".html":
            kinds["HTML pages"] += size
        elif "search" in path.parent.name:
            kinds["search index"] += size
        else:
            kinds["other (CSS, JS, fonts, images)"] += size
    return total, files, kinds


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.2f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="build a one-page site instead of the course's")
    parser.add_argument("--repeats", type=int, default=1, help="builds; the median time is reported")
    args = parser.parse_args(argv)
    title = "Site build (mkdocs build into a temporary folder)"
    with tempfile.TemporaryDirectory(prefix="bench-site-") as scratch:
        config = ROOT / "mkdocs.yml"
        if args.quick:
            for name, text in TINY_SITE.items():
                (Path(scratch) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(scratch) / name).write_text(text)
            config = Path(scratch) / "mkdocs.yml"
        output = Path(scratch) / "built"
        try:
            if not config.is_file():
                raise CannotRun(f"{config}: no such file")
            seconds = statistics.median(build(config, output) for _ in range(max(1, args.repeats)))
        except CannotRun as error:
            return report_cannot_run(title, error)
        total, files, kinds = size_of(output)
        pages = len(list(output.rglob("*.html")))
    rows = [("measure", "value"), ("build time", f"{seconds:.1f} s"), ("site size", _mib(total)),
            ("files", str(files)), ("HTML pages", str(pages))]
    rows += [(f"  {kind}", _mib(size)) for kind, size in kinds.items()]
    notes = [f"{config.relative_to(ROOT) if config.is_relative_to(ROOT) else 'a one-page site (--quick)'}; "
             f"median of {max(1, args.repeats)} build(s)"]
    print_table(title, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
