"""Helpers: run a notebook's code in-process, and inject known mistakes (mutants)."""
import copy
import pathlib
import re

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from autograder.demo import append_to_definition

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(path):
    return nbformat.read(str(path), as_version=4)


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test(cell):
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def namespace(nb, skip_errors=False):
    """Execute every code cell except the test cells; return the resulting globals.

    skip_errors: go on after a cell raises (a released stub's demo cells do), as a
    notebook run top to bottom would.
    """
    ns = {"__name__": "__notebook__"}
    transform = TransformerManager().transform_cell
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_test(cell):
            try:
                exec(compile(transform(cell.source), grade_id(cell) or "<cell>", "exec"), ns)
            except Exception:
                if not skip_errors:
                    raise
    return ns


def with_mutant(nb, mutant):
    """A copy of the notebook with the mutant's definition appended to its function's cell."""
    return append_to_definition(copy.deepcopy(nb), mutant.function, mutant.source)


MISTAKE_ID = re.compile(r"likely mistake \[([\w.]+)\]")


def named_mistakes(text):
    """The ids of the mistakes a check's message names (``likely mistake [id]: ...``)."""
    return set(MISTAKE_ID.findall(text or ""))


CAPSTONE_VERDICTS = ("outcome not reached", "is not the reference run", "do not follow the law", "must return",
                     "returned shape", "raised", "not implemented yet")


def clear_capstone_message(cell, text):
    """A capstone's failure names the capstone and says what went wrong: the outcome missed
    (measured vs required), the first difference from the reference run, the law the weights
    break, or the student's function that failed and how."""
    return f"{cell}:" in (text or "") and any(v in text for v in CAPSTONE_VERDICTS)
