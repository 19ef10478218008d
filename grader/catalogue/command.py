"""``grader resources [--online] [--file F]``: validate the catalogue, and check its links online."""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .links import check_links
from .load import DEFAULT_CATALOGUE, CatalogueError, load_catalogue
from .pages import KIND_PAGES

def summarise(catalogue: list[dict[str, Any]]) -> str:
    counts = Counter(entry["kind"] for entry in catalogue)
    by_kind = ", ".join(f"{counts[kind]} {kind}" for kind in KIND_PAGES if counts[kind])
    from_source = sum(1 for entry in catalogue if entry.get("from_source"))
    corrected = sum(1 for entry in catalogue if "note" in entry)
    return (
        f"{len(catalogue)} entries valid ({by_kind}); "
        f"{from_source} named by the source document, {corrected} with a correction note"
    )


def main(argv: list[str] | None = None, prog: str = "") -> int:
    """``grader resources [--online] [--file resources.yaml]``: 0 valid, 1 dead links, 2 invalid."""
    parser = argparse.ArgumentParser(
        prog=prog or "grader resources",
        description="Validate the resources catalogue; with --online also check that its links answer.",
    )
    parser.add_argument("--file", default=DEFAULT_CATALOGUE, help="catalogue to check (default: %(default)s)")
    parser.add_argument("--online", action="store_true", help="also request every link (network; slow)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request with --online")
    args = parser.parse_args(argv)

    try:
        catalogue = load_catalogue(args.file)
    except CatalogueError as exc:
        # Alone (as the tests call it) the message as is; from the grader command, prefixed like the others.
        print(f"{prog}: {exc}" if prog else exc, file=sys.stderr)
        return 2
    print(f"{Path(args.file).name}: {summarise(catalogue)}")
    if not args.online:
        return 0

    results = check_links(catalogue, timeout=args.timeout)
    dead = [result for result in results if result.dead]
    for result in results:
        if result.dead:
            print(f"dead link: entry '{result.entry_id}': {result.url} ({result.detail})", file=sys.stderr)
        elif result.blocked:
            print(f"not checkable (server refuses robots): entry '{result.entry_id}': {result.url} ({result.detail})")
    print(f"{len(results)} links checked, {len(dead)} dead")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
