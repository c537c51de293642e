"""Grading on Dask (autograder/cluster.py, pipeline.grade): a real scheduler and workers, a worker
killed midway, incremental regrades and manual grades.

The slow tests grade small classes of the activations assignment (about 1-2 s per notebook on an
idle machine, plus a few seconds for each cluster to start).
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import cluster, demo, pipeline
from conftest import ROOT

A = "activations"
NAME = f"{A}.ipynb"
TIMEOUT = 15
CLASS = ["correct", "not_started", "naive_sigmoid", "relu_grad_at_zero", "edited_the_tests", "deleted_a_test"]


# ---------------------------------------------------------------- fast: no kernel


def test_the_digest_changes_with_the_notebook_the_timestamp_and_the_grader():
    context = b"cells, points, code, timeout, sandbox"
    base = pipeline.submission_digest(context, b"{notebook}", b"2026-11-27 08:00:00")
    assert base == pipeline.submission_digest(context, b"{notebook}", b"2026-11-27 08:00:00")
    assert base != pipeline.submission_digest(context, b"{notebook} ", b"2026-11-27 08:00:00")
    assert base != pipeline.submission_digest(context, b"{notebook}", b"2026-11-27 08:00:01")
    assert base != pipeline.submission_digest(context, b"{notebook}", None)
    assert base != pipeline.submission_digest(context + b"!", b"{notebook}", b"2026-11-27 08:00:00")
    # Parts are length-prefixed: moving bytes from the notebook to the timestamp changes the digest.
    assert (pipeline.submission_digest(context, b"ab", b"c") != pipeline.submission_digest(context, b"a", b"bc"))


def test_the_grader_code_fingerprint_covers_the_chapter_and_the_engine(tmp_path, monkeypatch):
    package = tmp_path / "autograder"
    for name in cluster.GRADING_CODE:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("# engine\n")
    (package / A).mkdir()
    (package / A / "checks.py").write_text("# checks\n")
    (package / "other").mkdir()
    (package / "other" / "checks.py").write_text("# another chapter\n")
    (package / "report.py").write_text("# a tool around grading\n")
    monkeypatch.setattr(cluster, "PACKAGE", package)
    before = cluster.code_fingerprint(A)
    (package / "other" / "checks.py").write_text("# edited\n")
    (package / "report.py").write_text("# edited\n")
    assert cluster.code_fingerprint(A) == before
    (package / A / "checks.py").write_text("# a check changed\n")
    assert cluster.code_fingerprint(A) != before
    changed = cluster.code_fingerprint(A)
    (package / "verdicts.py").write_text("# the verdicts changed\n")
    assert cluster.code_fingerprint(A) != changed


# ---------------------------------------------------------------- a real cluster


def _class(root, students=CLASS):
    course = demo.make_class(root, A, broken=False)
    course.timeout = TIMEOUT
    for folder in course.path("grading", "submitted").iterdir():
        if folder.name not in students:
            shutil.rmtree(folder)
    return course


def _scores(course, students):
    with course.gradebook() as gb:
        return {s: {g.name: g.auto_score for nb in gb.find_submission(A, s).notebooks for g in nb.grades}
                for s in students}


class DaskProcesses:
    """`dask scheduler` and `dask worker` programs on 127.0.0.1, as an instructor starts them."""

    def __init__(self, folder, workers=2):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file = self.folder / "scheduler.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_LOGGING__DISTRIBUTED": "error"}
        dask = [sys.executable, "-m", "dask"]
        self.log = open(self.folder / "dask.log", "w")
        common = dict(env=env, cwd=self.folder, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.scheduler = subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                                 "--no-dashboard", "--scheduler-file", str(self.file)], **common)
        self.workers = {}
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for i in range(workers):
            name = f"worker{i}"
            self.workers[name] = subprocess.Popen(
                dask + ["worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-nanny",
                        "--name", name, "--host", "127.0.0.1"], **common)

    @property
    def address(self):
        import json
        return json.loads(self.file.read_text())["address"]

    def close(self):
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def dask_cluster(tmp_path):
    processes = DaskProcesses(tmp_path / "dask")
    from distributed import Client
    with Client(processes.address, timeout="60s") as client:
        client.wait_for_workers(2, timeout="120s")
    yield processes
    processes.close()


@pytest.mark.slow
def test_a_worker_killed_midway_loses_no_student(tmp_path, dask_cluster, monkeypatch):
    students = CLASS[:5]
    sequential = _class(tmp_path / "sequential", students)
    expected = {r.student: r for r in pipeline.grade(sequential, A, progress=False, jobs=1)}

    course = _class(tmp_path / "cluster", students)
    from distributed import Client
    watcher = Client(dask_cluster.address, timeout="60s")
    recorded, killed = [], {}
    original = pipeline.Recorder.record

    def record_then_kill(self, outcome):
        recorded.append(outcome["student"])
        if not killed:  # after the first result: kill a worker that is grading someone now
            busy = {w: keys for w, keys in watcher.processing().items() if keys}
            assert busy, "no task in flight to interrupt"
            address = sorted(busy)[0]
            name = watcher.scheduler_info(n_workers=-1)["workers"][address]["name"]
            os.killpg(dask_cluster.workers[name].pid, signal.SIGKILL)
            killed.update(name=name, address=address, in_flight=list(busy[address]))
        return original(self, outcome)

    monkeypatch.setattr(pipeline.Recorder, "record", record_then_kill)
    try:
        results = {r.student: r for r in pipeline.grade(course, A, progress=False, scheduler=dask_cluster.address)}
    finally:
        watcher.close()

    assert killed and dask_cluster.workers[killed["name"]].poll() is not None  # really dead
    assert sorted(recorded) == sorted(students)  # every student recorded exactly once
    assert set(results) == set(students)
    for s in students:
        assert not results[s].error, (s, results[s].error)
        assert results[s].score == expected[s].score and results[s].cells == expected[s].cells, s
    assert _scores(course, students) == _scores(sequential, students)
    after = recorded[1:]  # graded after the kill: all on the surviving worker
    assert all(results[s].worker != killed["address"] for s in after)


@pytest.mark.slow
def test_regrade_grades_only_changed_submissions_and_keeps_manual_grades(tmp_path):
    course = _class(tmp_path / "course", ["correct", "not_started", "naive_sigmoid"])
    first = {r.student: r for r in pipeline.grade(course, A, progress=False, jobs=2)}
    assert all(r.regraded for r in first.values())
    answer = "answer_vanishing_gradient"
    with course.gradebook() as gb:  # the instructor grades written answers
        for student in ("correct", "not_started"):
            grade = gb.find_grade(answer, A, A, student)
            grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
    # not_started resubmits: now the solution.
    submitted = course.submitted("correct", A) / NAME
    shutil.copy(submitted, course.submitted("not_started", A) / NAME)
    # An autograded notebook deleted by hand is graded again, whatever its digest says.
    (course.autograded("naive_sigmoid", A) / NAME).unlink()
    mtime = (course.autograded("correct", A) / NAME).stat().st_mtime_ns

    second = {r.student: r for r in pipeline.grade(course, A, progress=False, jobs=2, only_changed=True)}
    assert {s for s, r in second.items() if r.regraded} == {"not_started", "naive_sigmoid"}
    assert (course.autograded("correct", A) / NAME).stat().st_mtime_ns == mtime  # not even rewritten
    assert second["not_started"].cells == first["correct"].cells  # graded anew: full marks now
    assert second["correct"].score == first["correct"].score + 1.5  # untouched, manual grade included
    assert second["naive_sigmoid"].cells == first["naive_sigmoid"].cells
    with course.gradebook() as gb:
        for student in ("correct", "not_started"):
            assert gb.find_grade(answer, A, A, student).manual_score == 1.5, student
    assert "unchanged, grade kept" in pipeline.table(list(second.values()))

    third = {r.student: r for r in pipeline.grade(course, A, progress=False, jobs=2)}  # --force
    assert all(r.regraded for r in third.values())
    assert third["correct"].score == second["correct"].score
    with course.gradebook() as gb:
        assert gb.find_grade(answer, A, A, "correct").manual_score == 1.5
        assert not gb.find_grade(answer, A, A, "correct").needs_manual_grade  # nothing changed: no review


def test_the_workers_get_the_assignment_and_no_student(tmp_path):
    """What leaves the coordinator: a gradebook with the assignment's cells and no student or grade."""
    from nbgrader.api import Gradebook
    course = pipeline.Course(tmp_path / "course")
    shutil.copytree(ROOT / "solutions" / A, course.path("solutions", A))
    pipeline._assignment_in_gradebook(course, A)  # records it, as grade does on a fresh clone
    with course.gradebook() as gb:
        gb.update_or_create_student("someone", first_name="Some", last_name="One")
        snapshot = cluster.assignment_gradebook(gb, A)
        cells = {(c.name, c.checksum, c.locked) for c in gb.find_notebook(A, A).source_cells}
    copy = tmp_path / "copy.db"
    copy.write_bytes(snapshot)
    with Gradebook(f"sqlite:///{copy}") as gb:
        assert {(c.name, c.checksum, c.locked) for c in gb.find_notebook(A, A).source_cells} == cells
        assert gb.find_assignment(A).max_score > 0
        assert gb.students == []
