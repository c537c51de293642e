"""exercises/ is a fresh release of solutions/, and the notebooks are sound nbgrader sources."""
import json
import subprocess
import sys

import pytest
from nbgrader.validator import Validator

from autograder import pipeline
from conftest import ASSIGNMENTS, ROOT, release_path, solution_path


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_equal_a_fresh_release(assignment):
    stale = pipeline.check_release(pipeline.Course(ROOT), assignment)
    assert not stale, f"run `python -m autograder release {assignment}` and commit: {stale}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_has_no_solutions_or_hidden_tests(assignment):
    text = release_path(assignment).read_text()
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True", "Model answer"):
        assert secret not in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_are_committed_without_outputs(assignment):
    for path in (solution_path(assignment), release_path(assignment)):
        cells = json.loads(path.read_text())["cells"]
        assert not [c for c in cells if c.get("outputs")], path


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_validates(assignment):
    # `nbgrader validate` exits 0 even on failure: use the validator's API.
    assert Validator().validate(str(solution_path(assignment))) == {}


@pytest.mark.parametrize("command", ["release", "check-release", "collect", "grade", "feedback",
                                     "export", "stats", "demo"])
def test_every_command_has_help(command):
    out = subprocess.run([sys.executable, "-m", "autograder", command, "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr
