"""Notebook run times: each solution notebook executed end to end, as a learner runs it.

A learner presses "Run all" and waits; on a 2-core laptop or a free Colab machine the wait
must stay short. Each notebook in solutions/ is executed by ``jupyter nbconvert --to notebook
--execute`` (a fresh kernel, every cell in order, the start-up of Jupyter and the kernel
included) and timed against its target: NumPy notebooks under 30 s, framework notebooks
(TensorFlow, PyTorch) under 60 s, the whole course under 3 minutes; notebook 07 (a small GPT
trained from scratch) has its own target of 5 minutes on 2 cores, and its validation loss must
end below its bigram baseline; notebook 08 (a Llama, its KV cache and a closing training run)
has the same 5 minutes, and the table's notes give its cache's speed-up; notebook 09
(post-training) has 6 minutes, and its held-out accuracy after each stage is reported. With a
GPU, notebooks 07 and 08 run twice: on the CPU only
(CUDA_VISIBLE_DEVICES empty) and on the GPU, a row each.

    python -m bench.notebooks [--quick] [--repeats N]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from bench.__main__ import (
    ROOT,
    SCRIPTS,
    CannotRun,
    print_table,
    report_cannot_run,
    run_timed,
    tool_env,
)

NUMPY_TARGET_S = 30.0
FRAMEWORK_TARGET_S = 60.0
COURSE_TARGET_S = 180.0
OWN_TARGETS_S = {"07_gpt": 300.0, "08_modern_decoder": 300.0, "09_post_training": 360.0}  # notebooks that train models for minutes
GPU_NOTEBOOKS = ("07_gpt", "08_modern_decoder")
VALIDATION = re.compile(r"validation loss (\d+\.\d+) nats \(bigram (\d+\.\d+)")
SPEED_UP = re.compile(r"^\s*(\d+) new tokens: .*?(\d+\.\d)x faster", re.M)
STAGE_ACCURACY = re.compile(r"^(base model|SFT, full|SFT, LoRA \(merged\)|DPO from SFT|GRPO from SFT) +held-out "
                            r"accuracy +(\d+\.\d)%$", re.MULTILINE)
FRAMEWORKS = {"tensorflow": "TensorFlow", "torch": "PyTorch"}


def solution_notebooks(root: Path = ROOT) -> list[Path]:
    """solutions/<name>/<name>.ipynb for every notebook that exists now, in course order."""
    folders = sorted(p for p in (root / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
    return [f / f"{f.name}.ipynb" for f in folders if (f / f"{f.name}.ipynb").is_file()]


def framework_of(notebook: Path) -> str:
    """"TensorFlow" or "PyTorch" if the notebook imports one, else "NumPy" (read from its code cells)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise CannotRun(f"{notebook}: not a readable notebook ({error})") from None
    code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    for module, name in FRAMEWORKS.items():
        if f"import {module}" in code or f"from {module}" in code:
            return name
    return "NumPy"


def target_of(framework: str, name: str = "") -> float:
    if name in OWN_TARGETS_S:
        return OWN_TARGETS_S[name]
    return NUMPY_TARGET_S if framework == "NumPy" else FRAMEWORK_TARGET_S


def cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def printed_text(executed: Path) -> str:
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    return "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
                   for c in cells for o in c.get("outputs", []))


def cache_note(executed: Path) -> str | None:
    """'08_modern_decoder: the KV cache generates 3.9x faster at 256 new tokens, 76.2x at 1024'."""
    found = SPEED_UP.findall(printed_text(executed))
    if not found:
        return None
    return f"{executed.stem}: the KV cache generates " + ", ".join(f"{x}x faster at {n} new tokens" for n, x in found)


def validation_note(executed: Path) -> str | None:
    """'07_gpt: validation loss 3.27 vs bigram 3.67: below' from an executed notebook's output."""
    found = VALIDATION.search(printed_text(executed))
    if not found:
        return None
    loss, bigram = float(found.group(1)), float(found.group(2))
    return (f"{executed.stem}: validation loss {loss:.2f} vs bigram baseline {bigram:.2f}: "
            + ("below (target met)" if loss < bigram else "NOT below"))


def accuracy_note(executed: Path) -> str | None:
    """'09_post_training: held-out accuracy base 1.2%, SFT, full 39.6%, ...' from the stages table it prints."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return None
    text = "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
                   for c in cells for o in c.get("outputs", []))
    stages = STAGE_ACCURACY.findall(text)
    if not stages:
        return None
    return f"{executed.stem}: held-out accuracy " + ", ".join(f"{name} {value}%" for name, value in stages)


def execute(notebook: Path, output_dir: Path, timeout: float = 600, allow_errors: bool = False,
            env: dict | None = None) -> float:
    """Seconds for ``jupyter nbconvert --to notebook --execute`` of ``notebook`` (the executed copy
    goes to ``output_dir``; the kernel runs in the notebook's own folder, as in Jupyter).
    ``allow_errors`` runs every cell even after one fails, as nbgrader's Execute does."""
    cmd = [str(SCRIPTS / "jupyter"), "nbconvert", "--to", "notebook", "--execute", str(notebook),
           "--output-dir", str(output_dir), "--log-level", "ERROR", f"--ExecutePreprocessor.timeout={int(timeout)}"]
    if allow_errors:
        cmd.append("--allow-errors")
    seconds, _ = run_timed(cmd, f"jupyter nbconvert --execute {notebook}", cwd=notebook.parent, env=env,
                           timeout=timeout + 60)
    return seconds


def verdict(seconds: float, target: float) -> str:
    return "yes" if seconds <= target else "NO"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the first notebook, once")
    parser.add_argument("--repeats", type=int, default=1, help="runs per notebook; the median is reported")
    args = parser.parse_args(argv)
    title = "Notebook run times (jupyter nbconvert --execute)"
    try:
        notebooks = solution_notebooks()
        if not notebooks:
            raise CannotRun(f"{ROOT / 'solutions'}: no solution notebooks")
        if args.quick:
            notebooks = notebooks[:1]
        rows = [("notebook", "framework", "seconds", "target s", "met")]
        total, course_target, losses = 0.0, COURSE_TARGET_S, []
        gpu = cuda_available()
        with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
            for notebook in notebooks:
                framework = framework_of(notebook)
                name = notebook.stem
                cpu_only = tool_env(CUDA_VISIBLE_DEVICES="") if gpu and name in GPU_NOTEBOOKS else None
                seconds = statistics.median(execute(notebook, Path(scratch), env=cpu_only)
                                            for _ in range(max(1, args.repeats)))
                total += seconds
                target = target_of(framework, name)
                course_target += OWN_TARGETS_S.get(name, 0.0)
                rows.append((name, framework, f"{seconds:.1f}", f"{target:.0f}", verdict(seconds, target)))
                losses += [validation_note(Path(scratch) / notebook.name), cache_note(Path(scratch) / notebook.name),
                           accuracy_note(Path(scratch) / notebook.name)]
                if gpu and name in GPU_NOTEBOOKS:
                    seconds = execute(notebook, Path(scratch))
                    rows.append((f"{name} (GPU)", f"{framework}, CUDA", f"{seconds:.1f}", f"{target:.0f}",
                                 verdict(seconds, target)))
                    losses += [validation_note(Path(scratch) / notebook.name), cache_note(Path(scratch) / notebook.name)]
        rows.append(("whole course", f"{len(notebooks)} notebooks", f"{total:.1f}", f"{course_target:.0f}",
                     verdict(total, course_target)))
    except CannotRun as error:
        return report_cannot_run(title, error)
    notes = [f"median of {max(1, args.repeats)} run(s) per notebook; Jupyter and kernel start-up included"]
    notes += [note for note in losses if note]
    if args.quick:
        notes.append("--quick: only the first notebook; the course total is not the whole course")
    print_table(title, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
