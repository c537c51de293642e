"""The whole instructor pipeline under a real nbgrader autograde, on a synthetic class.

One class per assignment (autograder/demo.py): the solution, the released notebook,
one student per known mistake, and (activations) a looping, a crashing and a
malformed submission. Slow (a kernel per student): marked ``slow``.
"""
import csv

import nbformat
import pytest

from autograder import course, demo, pipeline
from autograder.mutants import for_assignment
from conftest import ASSIGNMENTS
from notebooks import clear_capstone_message, named_mistakes

pytestmark = pytest.mark.slow
TIMEOUT = 15  # seconds per cell: room for a slow CI machine; the looping student costs one
# The chapter-5 capstone runs an Optuna study in one cell (about 1 s of CPU, 10 on a machine loaded 10 deep):
# it gets the default grading timeout (30 s), not the tighter one above.
TIMEOUTS = {"hyperparameters": 30}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    assignment = request.param
    root = tmp_path_factory.mktemp(f"course-{assignment}")
    course = demo.make_class(root, assignment, broken=assignment == "activations")
    course.timeout = TIMEOUTS.get(assignment, TIMEOUT)
    # The normalisation class is graded two students at a time: same results expected.
    jobs = 2 if assignment == "normalization" else 1
    results = {r.student: r for r in pipeline.grade(course, assignment, progress=False, jobs=jobs)}
    pipeline.feedback(course, assignment, list(results.values()))
    return assignment, course, results


def test_solution_earns_every_automatic_point(graded):
    _, _, results = graded
    correct = results["correct"]
    assert not correct.error and correct.cells
    assert correct.failed_cells == ()
    assert correct.score == sum(top for _, top in correct.cells.values())
    assert correct.pending_manual > 0  # the written answers wait for the instructor


def test_released_notebook_earns_zero(graded):
    _, _, results = graded
    stub = results["not_started"]
    assert not stub.error and stub.cells
    assert stub.score == 0
    assert set(stub.failed_cells) == set(stub.cells)


def test_deleted_test_cells_are_restored_and_edited_ones_overwritten(graded):
    _, _, results = graded
    deleted = results["deleted_a_test"]
    assert not deleted.error and deleted.failed_cells == ()
    assert deleted.score == results["correct"].score
    edited = results["edited_the_tests"]
    assert edited.score == 0 and set(edited.failed_cells) == set(edited.cells)


def graded_outputs(course, student, assignment):
    """{grade_id: all error text of that cell} in the autograded notebook."""
    (path,) = course.autograded(student, assignment).glob("*.ipynb")
    out = {}
    for cell in nbformat.read(str(path), as_version=4).cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        texts = ["\n".join(o.get("traceback", [])) + o.get("evalue", "") for o in cell.get("outputs", [])
                 if o.get("output_type") == "error"]
        out[gid] = "\n".join(texts)
    return out


def test_each_mistake_loses_only_its_layers_and_names_exactly_its_ids(graded):
    assignment, course, results = graded
    for mutant in for_assignment(assignment):
        result = results[mutant.name]
        assert not result.error
        failed = set(result.failed_cells)
        assert failed, f"{mutant.name}: no point lost"
        own = {c for c in result.cells if any(c.startswith(f"test_{layer}_") for layer in mutant.layers)}
        capstones = {c for c in failed if c.startswith("capstone")}
        assert capstones == set(mutant.capstones), f"{mutant.name}: capstones failed {sorted(capstones)}"
        assert failed - capstones <= own, f"{mutant.name} lost points outside its layers: {sorted(failed - own)}"
        outputs = graded_outputs(course, mutant.name, assignment)
        for cell in failed:
            if cell in capstones:  # the outcome missed, or the first difference from the reference run
                assert clear_capstone_message(cell, outputs[cell]), f"{mutant.name}, {cell}:\n{outputs[cell]}"
                continue
            assert named_mistakes(outputs[cell]) == set(mutant.mistakes), f"{mutant.name}, {cell}:\n{outputs[cell]}"
            assert mutant.message in outputs[cell]


def test_broken_submissions_lose_only_what_they_broke(graded):
    assignment, course, results = graded
    if assignment != "activations":
        pytest.skip("the broken students are in the activations class")
    full = len(results["correct"].cells)
    for student, reason in [("loops", "CellTimeoutError"), ("crashes", "KernelDied")]:
        r = results[student]
        assert not r.error
        assert 0 < len(r.failed_cells) < full / 2, (student, r.failed_cells)
        outputs = graded_outputs(course, student, assignment)
        assert any(reason in outputs[c] for c in r.failed_cells), student
    malformed = results["malformed"]
    assert malformed.error and "not a valid notebook" in malformed.error and malformed.score == 0
    page = course.feedback_dir("malformed", assignment) / f"{assignment}.html"
    assert "could not be graded" in page.read_text()


def test_feedback_never_shows_hidden_tests(graded):
    assignment, course, results = graded
    pages = list(course.path("grading", "feedback").rglob("*.html"))
    assert len(pages) >= len(results)
    for page in pages:
        text = page.read_text()
        assert "HIDDEN TESTS" not in text and "hidden=True" not in text, page
    # ...while the autograded notebooks did run them.
    (path,) = course.autograded("correct", assignment).glob("*.ipynb")
    assert "hidden=True" in path.read_text()


def test_feedback_shows_the_diagnosis(graded):
    assignment, course, _ = graded
    mutant = for_assignment(assignment)[0]
    (page,) = course.feedback_dir(mutant.name, assignment).glob("*.html")
    text = page.read_text().replace("&#39;", "'").replace("&quot;", '"')
    assert f"likely mistake [{mutant.mistakes[0]}]" in text
    # The diagnosis, not a traceback into the checker.
    assert "most recent call last" not in text and "checking.py" not in text and "site-packages" not in text


def test_export_has_a_row_per_student(graded, tmp_path):
    assignment, course, results = graded
    rows = list(csv.DictReader(open(pipeline.export(course, tmp_path / "grades.csv"))))
    mine = {r["student"]: r for r in rows if r["assignment"] == assignment}
    assert set(mine) == set(results)
    assert float(mine["correct"]["auto_score"]) == results["correct"].score
    assert float(mine["not_started"]["score"]) == 0


def test_stats_rank_the_failing_cells(graded, tmp_path):
    assignment, course, results = graded
    cells, mistakes = pipeline.stats(course, assignment)
    chart = pipeline.plot_stats(cells, tmp_path / "failing.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    counts = dict((name, count) for name, count, _ in cells)
    assert counts, "no failing cell counted"
    assert max(counts.values()) == cells[0][1]
    named = {name for name, _, _ in mistakes}
    assert {i for m in for_assignment(assignment) for i in m.mistakes} <= named  # counted by id


PROBE = '''
import os, socket
def _probe():
    root = {root!r}
    found = {{"solutions visible": os.path.exists(os.path.join(root, "solutions", "activations", "activations.ipynb")),
             "other students visible": os.path.exists(os.path.join(root, "grading", "submitted", "correct"))}}
    try:
        open(os.path.join(root, "PWNED"), "w").write("x")  # must not reach the real course folder
    except OSError:
        pass
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=2)
        found["network"] = True
    except OSError:
        found["network"] = False
    print("PROBE", found)
_probe()
'''


@pytest.mark.skipif(not course.sandbox_available(), reason="bubblewrap (bwrap) is not installed")
def test_sandbox_confines_student_code(tmp_path):
    grading = demo.make_class(tmp_path, "activations", broken=False)
    name = "activations.ipynb"
    nb = nbformat.read(str(grading.submitted("correct", "activations") / name), as_version=4)
    cell = next(c for c in nb.cells if "def relu_forward(" in c.source)
    cell.source += "\n" + PROBE.format(root=str(grading.root))
    folder = grading.submitted("snoop", "activations")
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / name))
    (result,) = pipeline.grade(grading, "activations", ["snoop"], progress=False)
    assert not result.failed_cells  # the sandbox does not get in the way of honest work
    text = (grading.autograded("snoop", "activations") / name).read_text()
    probe = text.split("PROBE ", 1)[1].split("}", 1)[0]
    for key in ("solutions visible", "other students visible", "network"):
        assert f"'{key}': False" in probe, probe
    assert not (grading.root / "PWNED").exists()
