"""The text notebook 07's language model learns from: Python's own standard library.

Every learner already has it (it is the source code of the interpreter they run), so nothing
is downloaded. The corpus is a fixed, sorted list of modules, read as UTF-8 from the running
interpreter's standard library folder, about 2.7 MB on Python 3.11 (a little more or less on
other versions: the modules change between releases). The split is by file: every eighth
module of the list is validation text, the rest is training text, so no function is split
between the two.

The grader's own held-out text for the trained model is *not* this validation text (a
learner's code in the sandbox can read the standard library); see
``grader.checking.exercises.gpt.held_out_text``.
"""
from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass

# Present, as a .py file or a package's __init__.py, in CPython 3.9 to 3.14.
MODULES = (
    "argparse", "ast", "base64", "bisect", "calendar", "collections", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "difflib", "dis", "enum", "fractions", "ftplib",
    "functools", "gettext", "glob", "gzip", "heapq", "inspect", "ipaddress", "json.decoder",
    "json.encoder", "locale", "logging", "mailbox", "ntpath", "operator", "optparse", "os",
    "pathlib", "pdb", "pickle", "platform", "plistlib", "posixpath", "pprint", "queue", "random",
    "selectors", "shlex", "shutil", "socket", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "tokenize", "traceback", "types", "typing", "uuid",
    "warnings", "weakref", "zipfile",
)
VALIDATION_EVERY = 8  # modules 7, 15, 23, ... of the sorted list are validation text


@dataclass(frozen=True)
class Corpus:
    train: str
    validation: str
    train_modules: tuple[str, ...]
    validation_modules: tuple[str, ...]

    @property
    def megabytes(self) -> float:
        return (len(self.train.encode("utf-8")) + len(self.validation.encode("utf-8"))) / 1e6


def module_path(name: str, stdlib: str | None = None) -> str | None:
    """Where module ``name``'s source lies in the standard library, or None when it is absent.

    Files are found by path, not by import: several of these modules are frozen into the
    interpreter, so their import spec names no file.
    """
    base = os.path.join(stdlib or sysconfig.get_paths()["stdlib"], *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def read_modules(names, stdlib: str | None = None) -> str:
    """The sources of ``names`` joined in order, each file ending with one newline."""
    texts = []
    for name in names:
        path = module_path(name, stdlib)
        if path is not None:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read().rstrip("\n") + "\n")
    return "".join(texts)


def stdlib_corpus(stdlib: str | None = None) -> Corpus:
    """The training and validation text, split by module (every eighth module is validation)."""
    names = sorted(MODULES)
    validation = tuple(n for i, n in enumerate(names) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1)
    train = tuple(n for n in names if n not in validation)
    return Corpus(read_modules(train, stdlib), read_modules(validation, stdlib), train, validation)
