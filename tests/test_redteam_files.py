"""Red team, files side (issue 7): hostile and unlucky submissions against the grader itself.

Every case is built from the released notebook and graded in ONE batch with a
correct and an empty (not_started) control student, under a real nbgrader
autograde (pipeline.grade, feedback, export). Each case states its expected score
and the words its student must read. Around the batch: nothing outside the
students' folders changes, the controls score as when graded alone, a regrade
gives the same scores and keeps a manual grade. The fast tests at the end need
no kernel: a fresh clone's `grade`, collect's choices, the locked gradebook.
"""
import copy
import csv
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder import cli, demo, intake, pipeline
from conftest import ROOT

A = "activations"
NAME = f"{A}.ipynb"
TIMEOUT = 10   # seconds per cell: every case here finishes its cells in well under a second
AUTO = 26.0    # automatic points of the activations assignment (20 test cells + 2 capstones of 3; 4 more by hand)
SECRET = "outside-canary-0600-do-not-copy"


# ---------------------------------------------------------------- building the cases


def _test_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _text(nb):
    return nbformat.writes(nb)


def build_cases(course, outside):
    """{student: (writer(folder), expected auto score or None for 'not graded', words expected)}."""
    released = nbformat.read(str(course.path("exercises", A, NAME)), as_version=4)
    solution = nbformat.read(str(course.path("solutions", A, NAME)), as_version=4)
    correct = demo.fill_in(released, solution)
    gradebook = course.path("grading", "gradebook.db")
    classmate = course.submitted("correct", A) / NAME

    def variant(edit):
        nb = copy.deepcopy(correct)
        edit(nb)
        return nb

    def put(text, name=NAME):
        return lambda folder: (folder / name).write_text(text if isinstance(text, str) else _text(text))

    def links(folder):
        put(correct)(folder)
        os.symlink(gradebook, folder / "grades.db")
        os.symlink(course.path("solutions", A, NAME), folder / "solution.ipynb")
        os.symlink(classmate, folder / "friend.ipynb")
        os.symlink(outside, folder / "secret.txt")

    def replaced_by_link(folder):
        os.symlink(gradebook, folder / NAME)

    def edit_tests(nb):
        for cell in _test_cells(nb):
            cell.source = "pass"

    def delete_tests(nb):
        nb.cells = [c for c in nb.cells if c not in _test_cells(nb)]

    def duplicate_test(nb):
        cell = _cell(nb, "test_relu_forward")
        nb.cells.insert(nb.cells.index(cell) + 1, copy.deepcopy(cell))

    def retype_test(nb):
        cell = _cell(nb, "test_relu_forward")
        nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)

    def test_to_solution(nb):
        _cell(nb, "test_sigmoid_forward").metadata.nbgrader.update(solution=True, locked=False)

    def more_points(nb):
        _cell(nb, "test_tanh_forward").metadata.nbgrader["points"] = 100

    def added_grade_cell(nb):
        cell = nbformat.v4.new_code_cell("print('my own check')")
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": "my_check", "locked": False, "points": 5,
                                     "schema_version": 3, "solution": False, "task": False}
        nb.cells.append(cell)

    def two_notebooks(folder):
        put(correct)(folder)
        put(released, "copy of activations.ipynb")(folder)

    def huge(folder):
        with open(folder / NAME, "w") as f:
            f.write('{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "')
            f.write("x" * (100 * 2**20))
            f.write('"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')

    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "1 + 1", "language": "python", "outputs": []}]}]}
    r_kernel = variant(lambda nb: nb.metadata.update(kernelspec={"name": "ir", "language": "R", "display_name": "R"}))
    other_python = variant(lambda nb: nb.metadata.update(
        kernelspec={"name": "conda-env-py311", "language": "python", "display_name": "Python (course)"}))
    no_cells = nbformat.v4.new_notebook()
    edited = copy.deepcopy(released)
    edit_tests(edited)
    return {
        # the controls
        "correct": (put(correct), AUTO, []),
        "not_started": (put(released), 0.0, []),
        # links: never followed, never copied into feedback
        "links": (links, AUTO, ["grades.db is a symbolic link", "secret.txt is a symbolic link"]),
        "notebook_is_link": (replaced_by_link, None, ["activations.ipynb is a symbolic link", "no notebook"]),
        # test cells edited, deleted, duplicated, re-typed, their metadata changed
        "edited_tests": (put(edited), 0.0, []),  # every test cell 'pass': restored, no free points
        "deleted_tests": (put(variant(delete_tests)), AUTO, []),
        "duplicated_test": (put(variant(duplicate_test)), AUTO, ["'test_relu_forward' appeared twice"]),
        "retyped_test": (put(variant(retype_test)), AUTO, ["settings of cell 'test_relu_forward'"]),
        "test_to_solution": (put(variant(test_to_solution)), AUTO, ["settings of cell 'test_sigmoid_forward'"]),
        "more_points": (put(variant(more_points)), AUTO, ["settings of cell 'test_tanh_forward'"]),
        # honest students
        "added_grade_cell": (put(variant(added_grade_cell)), AUTO, ["a cell you added", "'my_check'"]),
        "bom": (lambda folder: (folder / NAME).write_bytes(b"\xef\xbb\xbf" + _text(correct).encode()), AUTO, []),
        "wrong_name": (put(correct, "activations (1).ipynb"), AUTO, ["named activations (1).ipynb"]),
        "two_notebooks": (two_notebooks, AUTO, ["not graded: copy of activations.ipynb"]),
        "other_python_kernel": (put(other_python), AUTO, []),
        # malformed files: a clear message and zero
        "no_cells": (put(no_cells), None, ["has no cells"]),
        "not_json": (put("this is not a notebook\n"), None, ["not readable as JSON"]),
        "truncated": (put(_text(released)[:2000]), None, ["not readable as JSON", "cut off"]),
        "nbformat3": (put(json.dumps(v3)), None, ["notebook format 3", "very old Jupyter"]),
        "r_kernel": (put(r_kernel), None, ["kernel for R", "Python 3 kernel"]),
        "huge": (huge, None, ["MB"]),
    }


# ---------------------------------------------------------------- the batch


def _digest(path):
    """A hash of a file or of a folder's files (names and bytes)."""
    path = pathlib.Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(path.parent)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _scores(course, students):
    with course.gradebook() as gb:
        out = {}
        for s in students:
            sub = gb.find_submission(A, s)
            out[s] = (sub.score, [(g.name, g.auto_score, g.manual_score) for nb in sub.notebooks for g in nb.grades])
    return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text(SECRET)
    outside.chmod(0o600)
    shutil.copytree(ROOT / "solutions" / A, root / "solutions" / A)
    course = pipeline.Course(root, timeout=TIMEOUT)
    pipeline.release(course, A)
    cases = build_cases(course, outside)
    for student, (write, _, _) in cases.items():
        folder = course.submitted(student, A)
        folder.mkdir(parents=True)
        write(folder)
    # A stray scratch notebook beside the real one, through collect (a download folder).
    downloads = tmp_path_factory.mktemp("downloads")
    (downloads / "stray_scratch").mkdir()
    shutil.copy(course.submitted("not_started", A) / NAME, downloads / "stray_scratch" / "a_scratch.ipynb")
    shutil.copy(course.submitted("correct", A) / NAME, downloads / "stray_scratch" / NAME)
    assert pipeline.collect(course, A, downloads) == ["stray_scratch"]
    cases["stray_scratch"] = (None, AUTO, [])

    watched = {"solutions": root / "solutions", "exercises": root / "exercises", "outside": outside,
               "checkout solutions": ROOT / "solutions", "checkout exercises": ROOT / "exercises",
               "classmate": course.submitted("correct", A)}
    before = {k: _digest(p) for k, p in watched.items()}
    results = {r.student: r for r in pipeline.grade(course, A, progress=False, jobs=2)}
    # A kernel (or a previous run) leaving links in a graded folder: feedback must not follow them.
    planted = course.autograded("links", A)
    os.symlink(outside, planted / "stolen.txt")
    os.symlink(course.path("solutions", A, NAME), planted / "solution_copy.ipynb")
    pipeline.feedback(course, A, list(results.values()))
    after = {k: _digest(p) for k, p in watched.items()}
    return course, cases, results, before, after, outside


@pytest.mark.slow
def test_every_case_scores_what_it_should(batch):
    course, cases, results, _, _, _ = batch
    outcomes = {}
    for student, (_, expected, words) in cases.items():
        r = results[student]
        said = (r.error + " " + " ".join(r.flags))
        ok = (r.score == expected and not r.error) if expected is not None else (r.score == 0 and bool(r.error))
        ok = ok and all(w in said for w in words)
        outcomes[student] = (ok, r.score, r.status)
    print("\n| case | expected | measured | what the student reads |\n|---|---|---|---|")  # for RESULTS.md (-s)
    for student, (ok, score, status) in outcomes.items():
        expected = cases[student][1]
        shown = "0, not graded" if expected is None else f"{expected:g}/{AUTO:g}"
        print(f"| {student} | {shown} | {score:g}{'' if ok else ' WRONG'} | {status.replace('|', '/')} |")
    wrong = {s: o for s, o in outcomes.items() if not o[0]}
    assert not wrong, "\n".join(f"{s}: {score} {status}" for s, (_, score, status) in wrong.items())
    assert len(cases) >= 20


@pytest.mark.slow
def test_the_feedback_explains_each_case(batch):
    course, cases, results, _, _, _ = batch
    for student, (_, expected, words) in cases.items():
        (page,) = course.feedback_dir(student, A).glob("*.html")
        text = page.read_text().replace("&#39;", "'").replace("&quot;", '"')
        for word in words:
            assert word in text, f"{student}: the feedback does not say {word!r}"
        if expected is None:
            assert "could not be graded" in text and "Score: 0" in text


@pytest.mark.slow
def test_controls_score_as_expected_in_the_hostile_batch(batch):
    _, _, results, _, _, _ = batch
    assert results["correct"].failed_cells == () and results["correct"].score == AUTO
    assert results["correct"].pending_manual == 4  # two written answers, 2 points each
    assert results["not_started"].score == 0 and set(results["not_started"].failed_cells) == set(
        results["not_started"].cells)


@pytest.mark.slow
def test_nothing_outside_the_students_folders_changed(batch):
    course, _, _, before, after, outside = batch
    assert before == after
    assert oct(outside.stat().st_mode & 0o777) == oct(0o600)
    assert not list(course.root.rglob("PWNED*"))


@pytest.mark.slow
def test_no_link_is_left_where_the_grader_writes_and_no_target_was_copied(batch):
    course, _, _, _, _, _ = batch
    solution_text = course.path("solutions", A, NAME).read_text()
    hidden = "### BEGIN HIDDEN TESTS"
    assert hidden in solution_text
    for folder in ("autograded", "feedback", pipeline.INTAKE_DIR):
        for path in course.path("grading", folder).rglob("*"):
            assert not path.is_symlink(), path
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data, path
                assert b"SQLite format" not in data[:16], path
    feedback = course.feedback_dir("links", A)
    assert sorted(p.name for p in feedback.iterdir()) == [f"{A}.html"]


@pytest.mark.slow
def test_export_writes_a_row_per_student_and_nbgrader_export_agrees(batch, tmp_path):
    course, cases, results, _, _, _ = batch
    ours = pipeline.export(course, tmp_path / "ours.csv")
    rows = {r["student"]: r for r in csv.DictReader(open(ours))}
    assert set(rows) == set(cases)
    for student, r in results.items():
        assert float(rows[student]["score"]) == r.score, student
    theirs = tmp_path / "nbgrader.csv"
    shutil.copy(ROOT / "nbgrader_config.py", course.root / "nbgrader_config.py")  # as in the repository
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(theirs)], cwd=course.root,
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert theirs.read_text() == ours.read_text()


@pytest.mark.slow
def test_a_locked_gradebook_stops_export_without_writing_zeros(batch, tmp_path):
    course, _, _, _, _, _ = batch
    target = tmp_path / "grades.csv"
    target.write_text("previous export\n")
    with _locked(course.path("grading", "gradebook.db")):
        with pytest.raises(pipeline.GradebookError, match="could not be used"):
            pipeline.export(course, target)
    assert target.read_text() == "previous export\n"


@pytest.mark.slow
def test_regrade_twice_same_scores_controls_as_alone_manual_grade_kept(batch):
    course, _, results, _, _, _ = batch
    controls = ["correct", "not_started"]
    with course.gradebook() as gb:  # the instructor grades a written answer
        grade = gb.find_grade("answer_vanishing_gradient", A.split(".")[0], A, "correct")
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
    first = {r.student: r for r in pipeline.grade(course, A, controls, progress=False, jobs=2)}
    scores_first = _scores(course, controls)
    second = {r.student: r for r in pipeline.grade(course, A, controls, progress=False, jobs=2)}
    assert _scores(course, controls) == scores_first
    for s in controls:  # graded alone: the same cells as in the hostile batch
        assert first[s].cells == second[s].cells == results[s].cells, s
    assert first["correct"].score == second["correct"].score == AUTO + 1.5
    assert second["correct"].pending_manual == 2  # only the other written answer still waits
    assert second["not_started"].score == 0


# ---------------------------------------------------------------- fast: no kernel


class _locked:
    """Hold an exclusive lock on a SQLite file from another process."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _fresh_clone(tmp_path, with_solutions=True):
    """A course folder as a fresh clone has it: solutions/ and exercises/, no gradebook."""
    root = tmp_path / "clone"
    if with_solutions:
        shutil.copytree(ROOT / "solutions" / A, root / "solutions" / A)
    shutil.copytree(ROOT / "exercises" / A, root / "exercises" / A)
    folder = root / "grading" / "submitted" / "alice" / A
    folder.mkdir(parents=True)
    (folder / NAME).write_text("not a notebook")  # no kernel needed to grade this one
    return root


def test_fresh_clone_grade_records_the_assignment_from_solutions(tmp_path):
    root = _fresh_clone(tmp_path)
    exercises = _digest(root / "exercises")
    course = pipeline.Course(root)
    (result,) = pipeline.grade(course, A, progress=False)
    assert "not readable as JSON" in result.error
    with course.gradebook() as gb:
        assert gb.find_assignment(A).max_score == AUTO + 4
    assert _digest(root / "exercises") == exercises  # exercises/ is left as committed


def test_fresh_clone_without_solutions_reports_once_with_the_fix(tmp_path, capsys):
    root = _fresh_clone(tmp_path, with_solutions=False)
    for student in ("bob", "carol"):
        shutil.copytree(root / "grading" / "submitted" / "alice", root / "grading" / "submitted" / student)
    code = cli.main(["--course-dir", str(root), "grade", A])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("no assignment") == 1 and "python -m autograder release" in err
    assert "NbGraderException" not in err


def test_a_locked_gradebook_stops_grade_before_any_zero(tmp_path):
    root = _fresh_clone(tmp_path)
    course = pipeline.Course(root)
    pipeline.grade(course, A, progress=False)  # creates the gradebook
    with _locked(root / "grading" / "gradebook.db"):
        with pytest.raises(pipeline.GradebookError, match="another program may be using it|Another program"):
            pipeline.grade(course, A, progress=False)


def test_collect_takes_the_released_name_and_never_a_link(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(ROOT / "exercises" / A, root / "exercises" / A)
    course = pipeline.Course(root)
    released = (root / "exercises" / A / NAME).read_text()
    downloads = tmp_path / "downloads"
    (downloads / "dora").mkdir(parents=True)
    (downloads / "dora" / "a_scratch.ipynb").write_text('{"cells": []}')
    (downloads / "dora" / NAME).write_text(released)
    (downloads / "eve").mkdir()
    secret = tmp_path / "secret.ipynb"
    secret.write_text(SECRET)
    os.symlink(secret, downloads / "eve" / NAME)
    os.symlink(secret, downloads / "mallory.ipynb")
    notes = []
    assert pipeline.collect(course, A, downloads, notes) == ["dora"]
    assert course.submitted("dora", A).joinpath(NAME).read_text() == released
    assert any("a_scratch.ipynb" in n and "not graded" in n for n in notes)
    assert any("mallory.ipynb" in n and "symbolic link" in n for n in notes)
    assert any("eve" in n and "symbolic link" in n for n in notes)


def test_intake_never_reads_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text(SECRET)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(intake.NotAFile):
        intake.read_regular_file(tmp_path / "link")
    intake.write_new_file(tmp_path / "link", b"new")  # replaces the link, not its target
    assert target.read_text() == SECRET and (tmp_path / "link").read_bytes() == b"new"
