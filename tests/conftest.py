import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # tests/notebooks.py

import notebooks  # noqa: E402
from notebooks import ROOT  # noqa: E402,F401
from autograder import course  # noqa: E402

ASSIGNMENTS = course.ASSIGNMENTS


def solution_path(assignment):
    return notebooks.ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def release_path(assignment):
    return notebooks.ROOT / "exercises" / assignment / f"{assignment}.ipynb"


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request):
    return request.param
