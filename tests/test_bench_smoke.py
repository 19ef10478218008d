"""`python -m bench --quick`: every benchmark starts, runs on a tiny input and prints its table.

Tiny inputs (2 submissions of the first notebook, graded as a small class and in class-size
mode, the first notebook executed once, 1 epoch of each network, a one-page site) keep this near a minute; the figures themselves are not
checked, only that each table is there and that what must agree does agree.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from notebook_cases import ROOT

TABLES = ["Grading throughput", "Grading at class size", "Notebook run times", "NumPy vs PyTorch vs TensorFlow", "Site build"]


@pytest.fixture(scope="module")
def quick_run():
    done = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stdout, done.stderr


def test_every_benchmark_runs_and_prints_its_table(quick_run):
    status, out, err = quick_run
    assert status == 0, out + err[-3000:]
    for title in TABLES:
        assert f"## {title}" in out, f"no {title!r} table:\n{out}"
    assert "could not run" not in out


def test_the_machine_is_described_first(quick_run):
    _, out, _ = quick_run
    head = out.split("## ")[0]
    for field in ("CPU:", "memory:", "Python:", "numpy", "torch", "tensorflow"):
        assert field in head, f"{field!r} missing from the machine description:\n{head}"
    assert re.search(r"CPU: .+, \d+ cores usable", head)


def test_grading_compares_both_graders_and_ends_with_the_speedup(quick_run):
    _, out, _ = quick_run
    grading = out.split("## Grading throughput")[1].split("\n## ")[0]
    assert "grades identical (gradebooks compared cell by cell): 2/2 submissions" in grading
    assert re.search(r"^01_forward\s+2\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\dx$", grading, re.M)
    assert re.search(r"\n\ngrading speedup vs nbgrader: \d+\.\d\dx\n", grading + "\n")
    assert re.search(r"bare execution .*: \d+\.\d\d s per submission", grading)


def test_class_size_mode_grades_the_class_both_ways_with_the_same_grades(quick_run):
    _, out, _ = quick_run
    table = out.split("## Grading at class size")[1].split("\n## ")[0]
    assert re.search(r"^01_forward\s+2(\s+\d+\.\d){2}\s+\d+\.\d\dx\s+-(\s+\d+\.\d\d){2}(\s+\d+\.\d){2}\s+"
                     r"\d+\.\d\dx\s+(yes|no)$", table, re.M), table
    assert "01_forward: 1 correct, 1 partial; grades identical (gradebooks compared cell by cell): 2/2; bare execution" in table


def test_notebook_table_has_targets_and_verdicts(quick_run):
    _, out, _ = quick_run
    table = out.split("## Notebook run times")[1].split("\n## ")[0]
    assert re.search(r"^01_forward\s+NumPy\s+\d+\.\d\s+30\s+(yes|NO)$", table, re.M)
    assert re.search(r"^whole course\s+1 notebooks\s+\d+\.\d\s+180\s+(yes|NO)$", table, re.M)


def test_the_three_implementations_train_the_same_network(quick_run):
    _, out, _ = quick_run
    table = out.split("## NumPy vs PyTorch vs TensorFlow")[1].split("\n## ")[0]
    for network in ("10-20-5 MSE", "64-128-10 softmax"):
        losses = {f: float(m) for f, m in re.findall(rf"^{network}.*?(NumPy|PyTorch|TensorFlow)\s+CPU\s+\S+\s+\S+\s+(\S+)$",
                                                     table, re.M)}
        assert set(losses) == {"NumPy", "PyTorch", "TensorFlow"}, table
        assert max(losses.values()) - min(losses.values()) <= 1e-3 * min(losses.values()), losses
    assert len(re.findall(r"NumPy / PyTorch CPU, .*: \d+\.\d\dx \(target <= 1.5x: (met|missed)\)", table)) == 2


def test_site_table_reports_time_and_size(quick_run):
    _, out, _ = quick_run
    table = out.split("## Site build")[1]
    assert re.search(r"build time\s+\d+\.\d s", table)
    assert re.search(r"site size\s+\d+\.\d\d MiB", table)
