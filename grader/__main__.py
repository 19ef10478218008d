"""``python -m grader``: the command line, for a shell or a notebook cell with no environment
activated (``!{sys.executable} -m grader check 01_forward.ipynb``)."""
import sys

from .cli import main

sys.exit(main())
