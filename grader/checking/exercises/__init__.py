"""The exercises of each notebook, by notebook name."""
from __future__ import annotations

import importlib.util

from ..spec import NotebookSpec

# Notebook name -> module (under grader.checking.exercises) that defines ``NOTEBOOK``.
_MODULES = {
    "01_forward": "forward",
    "02_backprop": "backprop",
    "03_gradient_descent": "gradient_descent",
    "04_tensorflow": "tensorflow_autograd",
    "05_pytorch": "pytorch_autograd",
    "06_attention": "attention",
    "07_gpt": "gpt",
    "08_modern_decoder": "modern_decoder",
    "09_post_training": "post_training",
}


def available() -> list[str]:
    """Names of the notebooks whose exercises are defined."""
    names = []
    for name, module in _MODULES.items():
        if importlib.util.find_spec(f"{__name__}.{module}") is not None:
            names.append(name)
    return names


def module_of(name: str) -> str:
    """The module that defines notebook ``name``'s exercises; KeyError if there is none."""
    if name not in _MODULES:
        raise KeyError(name)
    return f"{__name__}.{_MODULES[name]}"


def notebook_spec(name: str) -> NotebookSpec:
    """The exercises of notebook ``name`` (e.g. "01_forward"); KeyError if there is none."""
    return importlib.import_module(module_of(name)).NOTEBOOK
