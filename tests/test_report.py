"""The class report (autograder/report.py) and the LMS exports (autograder/exports.py).

The report is built from a small graded class (slow: a real autograde) with a correct, an empty,
a mistaken, a crashing and an unreadable submission; the exports' layouts are checked on a
gradebook filled by hand (fast).
"""
import base64
import csv
import re

import pytest

from autograder import cli, demo, exports, pipeline, report

A = "activations"
CLASS = ["correct", "not_started", "naive_sigmoid", "crashes", "malformed"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-class")
    course = demo.make_class(root, A, broken=True)
    course.timeout = 15
    results = {r.student: r for r in pipeline.grade(course, A, CLASS, progress=False, jobs=2)}
    return course, results


@pytest.mark.slow
def test_the_report_page_shows_what_an_instructor_needs(graded, tmp_path):
    course, results = graded
    assert cli.main(["--course-dir", str(course.root), "report", A, "--output", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)

    data = report.collect(course, A)
    graded_ids = {s.id for s in data.graded}
    assert graded_ids == {"correct", "not_started", "naive_sigmoid", "crashes"}  # malformed: not gradable
    share = {t: s for t, s, _ in data.failing_share()}
    assert set(share) == set(results["correct"].cells)
    for test, value in share.items():  # the share failing each test, from the results themselves
        failing = sum(test in results[s].failed_cells for s in graded_ids)
        assert value == pytest.approx(failing / len(graded_ids)), test
    # The empty notebook fails everything, the solution nothing: no test fails for everybody.
    assert data.always_failed() == []
    assert set(data.never_failed()) == {t for t, v in share.items() if v == 0}

    mistakes = {m: (count, title, advice) for m, count, title, advice in data.mistakes()}
    assert "sigmoid.naive_overflow" in mistakes and mistakes["sigmoid.naive_overflow"][0] == 1
    count, title, advice = mistakes["sigmoid.naive_overflow"]
    assert title and advice and title in page.replace("&#x27;", "'")  # the checks' own words
    assert "exp(" in advice

    broken = {s.id: "; ".join(s.broken) for s in data.broken()}
    assert "not a valid notebook" in broken["malformed"]
    assert "kernel crashed" in broken["crashes"]
    assert "correct" not in broken and "naive_sigmoid" not in broken
    slowest = data.slowest()
    assert {s.id for s in slowest} == graded_ids and all(s.seconds > 0 for s in slowest)
    assert [s.seconds for s in slowest] == sorted((s.seconds for s in slowest), reverse=True)
    for section in ("Scores", "Share of students failing", "Diagnosed mistakes", "Badly calibrated",
                    "Slowest submissions", "Broken submissions"):
        assert section in page


@pytest.mark.slow
def test_the_exports_of_a_graded_class_match_the_gradebook(graded, tmp_path):
    course, results = graded
    for layout in exports.FORMATS:
        assert cli.main(["--course-dir", str(course.root), "export", str(tmp_path / f"{layout}.csv"),
                         "--format", layout]) == 0
    canvas = list(csv.reader(open(tmp_path / "canvas.csv")))
    by_login = {row[3]: row for row in canvas[2:]}
    assert set(by_login) == set(CLASS)
    assert float(by_login["correct"][5]) == results["correct"].score
    assert float(by_login["malformed"][5]) == 0


# ---------------------------------------------------------------- fast: layouts


@pytest.fixture
def small_gradebook(tmp_path):
    """A gradebook with two assignments and three students, one of whom did not submit the second."""
    from nbgrader.api import Gradebook
    course = pipeline.Course(tmp_path / "course")
    with course.gradebook() as gb:
        for name, points in (("activations", 10.0), ("preprocessing", 5.0)):
            gb.add_assignment(name)
            gb.add_notebook(name, name)
            gb.add_grade_cell("q1", name, name, max_score=points, cell_type="code")
            gb.add_solution_cell("q1", name, name)
            gb.add_source_cell("q1", name, name, cell_type="code")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace", email="ada@example.org")
        gb.add_student("alan", first_name="Alan", last_name="Turing", email="alan@example.org")
        gb.add_student("nobody")
        for student, scores in (("ada", {"activations": 7.5, "preprocessing": 5.0}), ("alan", {"activations": 10.0}),
                                ("nobody", {})):
            for name, score in scores.items():
                gb.add_submission(name, student)
                gb.find_grade("q1", name, name, student).auto_score = score
        gb.db.commit()
    assert isinstance(course.gradebook(), Gradebook)
    return course


def test_canvas_layout(small_gradebook, tmp_path):
    rows = list(csv.reader(open(exports.write(small_gradebook, tmp_path / "c.csv", "canvas"))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "activations", "preprocessing"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10", "5"]
    assert ["Lovelace, Ada", "", "ada", "ada", "", "7.5", "5"] in rows
    assert ["Turing, Alan", "", "alan", "alan", "", "10", "0"] in rows  # no submission: 0
    assert ["nobody", "", "nobody", "nobody", "", "0", "0"] in rows
    assert len(rows) == 5


def test_moodle_layout(small_gradebook, tmp_path):
    rows = list(csv.reader(open(exports.write(small_gradebook, tmp_path / "m.csv", "moodle"))))
    assert rows[0] == ["First name", "Last name", "ID number", "Email address",
                       "Assignment: activations (Real)", "Assignment: preprocessing (Real)"]
    assert ["Ada", "Lovelace", "ada", "ada@example.org", "7.5", "5"] in rows
    assert ["Alan", "Turing", "alan", "alan@example.org", "10", "0"] in rows
    assert len(rows) == 4


def test_generic_layout_and_one_assignment(small_gradebook, tmp_path):
    rows = list(csv.reader(open(exports.write(small_gradebook, tmp_path / "g.csv", "generic",
                                              assignments=["preprocessing"]))))
    assert rows[0] == ["student", "first_name", "last_name", "email", "preprocessing", "preprocessing (max)"]
    assert ["ada", "Ada", "Lovelace", "ada@example.org", "5", "5"] in rows
    with pytest.raises(ValueError, match="unknown export format"):
        exports.rows("blackboard", [], [], {})
