"""Run a solution notebook's code cells as a plain script and time them: for a GPU machine.

The GPU machines this course is checked on have PyTorch with CUDA but no Jupyter, so this
executes the cells in order in one namespace (the Colab setup cell is skipped; test cells run
their visible and hidden checks), prints each cell's time and output tail, and the total.

    python bench/gpu_check.py solutions/05_pytorch/05_pytorch.ipynb [...]
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import traceback


def run(path: str) -> bool:
    cells = json.load(open(path, encoding="utf-8"))["cells"]
    namespace = {"__name__": "__main__"}
    ok, started = True, time.perf_counter()
    print(f"== {path}")
    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or meta.get("grade_id") == "setup":
            continue
        source = "".join(cell["source"])
        if meta.get("grade") and not meta.get("solution"):
            source = "from grader.notebook import check\n" + source
        out = io.StringIO()
        t = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source, f"{path}#cell{index}", "exec"), namespace)
            status = "ok"
        except Exception:
            ok, status = False, "FAILED\n" + traceback.format_exc(limit=3)
        text = out.getvalue().strip().splitlines()
        print(f"cell {index:2d} [{meta.get('grade_id', '-')}] {time.perf_counter() - t:7.2f} s  {status}")
        for line in text[-4:]:
            print(f"    | {line[:150]}")
    print(f"== total {time.perf_counter() - started:.1f} s, {'all cells ran' if ok else 'some cells FAILED'}")
    return ok


if __name__ == "__main__":
    results = [run(p) for p in sys.argv[1:]]
    sys.exit(0 if all(results) else 1)
