"""Shared fixtures: the course root, and the virtualenv's scripts on PATH for subprocesses.

Test modules that start sandboxes, Jupyter kernels, nbgrader, a cluster, a deep-learning
framework or a full site build are marked ``slow`` here, by name: ``make test-fast`` (pytest
-m "not slow and not browser") leaves them out for the inner loop; ``make test`` runs them all.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent

# nbgrader shells out to `alembic`, and the tests call `grader` and `nbgrader` by name.
os.environ["PATH"] = f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SLOW_MODULES = {
    "test_attention": "PyTorch, the notebook in a kernel, a sample class of 06",
    "test_autograde": "a sample class graded in sandboxes",
    "test_bench_smoke": "every benchmark, tiny",
    "test_check_cli": "grader check runs the notebook in the sandbox",
    "test_cluster": "a Dask cluster and PostgreSQL",
    "test_formulas": "PyTorch autograd",
    "test_formulas_modern": "PyTorch and Hugging Face's Llama modules",
    "test_formulas_post_training": "PyTorch, Hugging Face's Llama and PEFT",
    "test_formulas_scale": "PyTorch, the pages' snippets",
    "test_framework_noise": "TensorFlow and PyTorch notebooks",
    "test_in_kernel_checks": "Jupyter kernels",
    "test_nbgrader_autograde": "nbgrader's own autograde, kernels",
    "test_notebooks": "every notebook and injected mistake in the sandbox",
    "test_oracles": "TensorFlow and PyTorch",
    "test_redteam": "attacks on the sandbox",
    "test_release": "nbgrader releases every assignment",
    "test_site_build": "MkDocs builds the site",
    "test_visible_checks": "Jupyter kernels",
    "test_gpt": "PyTorch, the GPT notebook in a kernel and in the sandbox",
    "test_modern_decoder": "PyTorch and transformers, notebook 08 in a kernel, a class of 08",
    "test_post_training": "PyTorch, TRL and PEFT, the post-training notebook in a kernel",
    "test_trusted_reading": "forged results in sandboxes, a class with a killed worker",
    "test_trusted_models": "classes of notebooks 03 and 05 in sandboxes",
    "test_containment": "attacks on the sandbox's slot and host, in sandboxes",
    "test_warm_sandbox": "sandboxes forked from warm processes, graded warm and cold",
    "test_trusted_bounds": "a notebook at every size cap, parsed and measured in a fresh process",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_ignore_collect(collection_path, config):
    """Under -m "not slow", slow modules are not even imported (TensorFlow and PyTorch alone
    take half a minute to import)."""
    if collection_path.stem not in SLOW_MODULES or not config.option.markexpr:
        return None
    from _pytest.mark.expression import Expression

    if not Expression.compile(config.option.markexpr).evaluate(lambda mark, **kwargs: mark == "slow"):
        return True
    return None


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def gen():
    """A seeded torch generator, for the formula tests' random inputs."""
    import torch

    return torch.Generator().manual_seed(0)
