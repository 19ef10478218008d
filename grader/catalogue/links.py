"""The online link check (``grader resources --online``): the only code here that touches the network."""
from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

USER_AGENT = "ai-foundations-linkcheck/1.0 (+https://github.com/large-models-course/ai-foundations)"
# Sites that refuse robots (403, 429) are not evidence of a dead link; they are reported apart.
BLOCKED_STATUSES = {401, 403, 429}


@dataclass(frozen=True)
class LinkResult:
    entry_id: str
    url: str
    status: int | None  # None: no HTTP answer at all
    detail: str

    @property
    def dead(self) -> bool:
        return self.status is None or (self.status >= 400 and self.status not in BLOCKED_STATUSES)

    @property
    def blocked(self) -> bool:
        return self.status in BLOCKED_STATUSES


def entry_links(entry: dict[str, Any]) -> list[str]:
    urls = [entry["url"]]
    if "arxiv" in entry:
        urls.append(f"https://arxiv.org/abs/{entry['arxiv']}")
    if "doi" in entry:
        urls.append(f"https://doi.org/{entry['doi']}")
    return urls


def check_link(entry_id: str, url: str, timeout: float = 15.0) -> LinkResult:
    """HEAD first (cheap); servers that reject HEAD get a GET that reads only the first bytes."""
    status, detail = None, ""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if method == "GET":
                    response.read(1024)
                return LinkResult(entry_id, url, response.status, "ok")
        except urllib.error.HTTPError as exc:
            status, detail = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, detail = None, str(getattr(exc, "reason", exc))
    return LinkResult(entry_id, url, status, detail)


def check_links(catalogue: list[dict[str, Any]], timeout: float = 15.0, workers: int = 8) -> list[LinkResult]:
    jobs = [(entry["id"], url) for entry in catalogue for url in entry_links(entry)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: check_link(job[0], job[1], timeout=timeout), jobs))
