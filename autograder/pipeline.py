"""The instructor's pipeline: release, collect, grade, feedback, export, stats.

Each step is a function of a :class:`Course` (the course root and its nbgrader
config); ``python -m autograder`` exposes them as commands, in this order:

    release -> collect -> grade -> feedback -> export -> stats

Every step goes through nbgrader's own API, so plain ``nbgrader`` commands on the
same folder see the same gradebook and files.
"""
import concurrent.futures
import contextlib
import csv
import dataclasses
import filecmp
import html
import io
import json
import logging
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
from collections import Counter

import nbformat
from tqdm.auto import tqdm

from . import course as course_settings


@dataclasses.dataclass
class Course:
    """A course folder: solutions/, exercises/ and grading/ under ``root``."""

    root: pathlib.Path
    timeout: int = course_settings.DEFAULT_TIMEOUT
    sandbox: object = "auto"   # True, False or "auto": bubblewrap when it works here

    def __post_init__(self):
        self.root = pathlib.Path(self.root).resolve()

    @property
    def config(self):
        return course_settings.make_config(self.root, self.timeout, self.sandbox)

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        config = self.config
        return NbGraderAPI(CourseDirectory(config=config), config=config)

    def gradebook(self):
        from nbgrader.api import Gradebook
        return Gradebook(self.config.CourseDirectory.db_url)

    def path(self, *parts):
        return self.root.joinpath(*parts)

    def submitted(self, student, assignment):
        return self.path(course_settings.GRADING_DIR, "submitted", student, assignment)

    def autograded(self, student, assignment):
        return self.path(course_settings.GRADING_DIR, "autograded", student, assignment)

    def feedback_dir(self, student, assignment):
        return self.path(course_settings.GRADING_DIR, "feedback", student, assignment)

    def students(self, assignment):
        folder = self.path(course_settings.GRADING_DIR, "submitted")
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / assignment).is_dir())


@contextlib.contextmanager
def _quiet():
    """Keep the terminal for the progress bar and the table.

    nbgrader logs every file it touches, and each kernel it starts writes a warning
    to the process's stderr (file descriptor 2, below Python's sys.stderr); errors
    that matter come back in nbgrader's result dicts and are reported from there.
    """
    logger = logging.getLogger()
    old_level = logger.level
    logger.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        logger.setLevel(old_level)


def _check(result, what):
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('error') or result.get('log')}")


# ---------------------------------------------------------------- release


def release(course, assignment):
    """Regenerate exercises/<assignment>/ from solutions/<assignment>/ (nbgrader generate_assignment)."""
    with _quiet():
        result = course.api().generate_assignment(assignment, force=True)
    _check(result, f"releasing {assignment}")
    return course.path("exercises", assignment)


def check_release(course, assignment):
    """Return the files of exercises/<assignment> that differ from a fresh release (empty: in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(course.path("solutions", assignment), pathlib.Path(tmp, "solutions", assignment))
        fresh = release(Course(tmp), assignment)
        committed = course.path("exercises", assignment)
        if not committed.is_dir():
            return [f"exercises/{assignment} is missing"]
        diff = filecmp.dircmp(fresh, committed, ignore=[".ipynb_checkpoints", "__pycache__"])
        return _differences(diff, f"exercises/{assignment}")


def _differences(diff, prefix):
    out = [f"{prefix}/{name} (missing)" for name in diff.left_only]
    out += [f"{prefix}/{name} (not in a fresh release)" for name in diff.right_only]
    for name in diff.common_files:
        if pathlib.Path(diff.left, name).read_bytes() != pathlib.Path(diff.right, name).read_bytes():
            out.append(f"{prefix}/{name} (differs)")
    for name, sub in diff.subdirs.items():
        out += _differences(sub, f"{prefix}/{name}")
    return out


# ---------------------------------------------------------------- collect


def collect(course, assignment, source):
    """Copy submissions into grading/submitted/<student>/<assignment>/.

    ``source`` holds either one notebook per student (``<student>.ipynb``) or one
    folder per student (``<student>/*.ipynb``, e.g. an LMS download). The notebook is
    saved under the released notebook's name, whatever the student called it.
    Returns the list of students collected.
    """
    source = pathlib.Path(source)
    names = sorted(p.name for p in course.path("exercises", assignment).glob("*.ipynb"))
    if len(names) != 1:
        raise ValueError(f"collect expects one released notebook in exercises/{assignment}, found {names}")
    students = []
    for entry in sorted(source.iterdir()):
        if entry.is_dir():
            notebooks = sorted(entry.rglob("*.ipynb"))
            student = entry.name
        elif entry.suffix == ".ipynb":
            notebooks, student = [entry], entry.stem
        else:
            continue
        if not notebooks:
            continue
        target = course.submitted(student, assignment)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebooks[0], target / names[0])
        students.append(student)
    return students


# ---------------------------------------------------------------- grade


@dataclasses.dataclass
class Result:
    """One student's autograde: scores from the gradebook, or why grading failed."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    pending_manual: float = 0.0   # points awaiting a human (written answers)
    cells: dict = dataclasses.field(default_factory=dict)  # test cell -> (auto score, max score)
    error: str = ""               # set when the submission could not be graded at all

    @property
    def failed_cells(self):
        return tuple(name for name, (score, top) in self.cells.items() if score < top)

    @property
    def status(self):
        if self.error:
            return f"not graded: {self.error}"
        failed = self.failed_cells
        if not failed:
            return "all tests passed"
        shown = ", ".join(name.removeprefix("test_") for name in failed[:4])
        more = f" (+{len(failed) - 4} more)" if len(failed) > 4 else ""
        return f"failed {len(failed)}/{len(self.cells)}: {shown}{more}"


def grade(course, assignment, students=None, progress=True, jobs=1):
    """Autograde every submission (nbgrader autograde, one kernel per student).

    A submission that cannot be graded (not a notebook, say) gets score 0 and an
    ``error``; the others are graded regardless. ``jobs`` > 1 grades that many
    students at once, in separate processes; a student whose grading fails in
    parallel (the gradebook was busy, say) is graded again on their own.
    Returns a list of Result, in the order of ``students``.
    """
    students = students or course.students(assignment)
    problems = {s: _unreadable(course, s, assignment) for s in students}
    with course.gradebook() as gb:  # the unreadable ones are listed in the export, with 0
        for student, problem in problems.items():
            if problem is not None:
                gb.update_or_create_student(student)
    todo = [s for s, problem in problems.items() if problem is None]
    bar = tqdm(total=len(students), desc=f"grading {assignment}", unit="student", disable=not progress)
    bar.update(len(students) - len(todo))
    args = (str(course.root), course.timeout, course.sandbox, assignment)
    if jobs > 1 and len(todo) > 1:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx) as pool:
            futures = {pool.submit(_autograde, *args, s): s for s in todo}
            for future in concurrent.futures.as_completed(futures):
                problems[futures[future]] = future.result()
                bar.update(0 if problems[futures[future]] else 1)
        todo = [s for s in todo if problems[s] is not None]  # retried alone, below
    for student in todo:
        problems[student] = _autograde(*args, student)
        bar.update()
    bar.close()
    return [_result(course, assignment, s, problems[s]) for s in students]


def _autograde(root, timeout, sandbox, assignment, student):
    """nbgrader autograde for one student; returns None, or why it failed."""
    api = Course(root, timeout, sandbox).api()
    with _quiet():
        outcome = api.autograde(assignment, student, force=True, create=True)
    return None if outcome.get("success") else _summarise_error(outcome)


def _unreadable(course, student, assignment):
    """Why a submission cannot be read as a notebook, or None."""
    for path in course.submitted(student, assignment).glob("*.ipynb"):
        try:
            json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            return (f"{path.name} is not a valid notebook: not readable as JSON{where} "
                    "(was the file cut off, or edited outside Jupyter?)")
        try:
            nbformat.validate(nbformat.read(str(path), as_version=4))
        except Exception as exc:  # a JSON file that is not a notebook
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"{path.name} is not a valid notebook ({first[:150]})"
    return None


def _summarise_error(outcome):
    text = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()
    return (text[-1] if text else "nbgrader autograde failed")[:200]


def _result(course, assignment, student, problem):
    result = Result(student, error=problem or "")
    with course.gradebook() as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except Exception:
            result.max_score = _assignment_max(gb, assignment)
            return result
        grades = [g for nb in submission.notebooks for g in nb.grades]
        result.max_score = submission.max_score
        if problem:
            return result
        result.score = submission.score
        result.pending_manual = sum(g.max_score for g in grades if g.needs_manual_grade)
        result.cells = {g.name: (g.auto_score or 0.0, g.max_score) for g in grades if g.cell_type == "code"}
    return result


def _assignment_max(gb, assignment):
    try:
        return gb.find_assignment(assignment).max_score
    except Exception:
        return 0.0


def table(results):
    """The summary table printed after grading."""
    width = max([7] + [len(r.student) for r in results])
    lines = [f"{'student':<{width}}  {'score':>11}  {'manual':>6}  status", "-" * (width + 40)]
    for r in results:
        lines.append(f"{r.student:<{width}}  {r.score:5.1f}/{r.max_score:<5.1f}  {r.pending_manual:>6.1f}  {r.status}")
    return "\n".join(lines)


# ---------------------------------------------------------------- feedback


def feedback(course, assignment, results=None):
    """Write grading/feedback/<student>/<assignment>/*.html (hidden tests removed).

    Students whose submission could not be graded get a page that says why.
    Returns the feedback folders by student.
    """
    results = results or [Result(s, error=_unreadable(course, s, assignment) or "")
                          for s in course.students(assignment)]
    api, folders = course.api(), {}
    for r in tqdm(results, desc="feedback", unit="student", leave=False):
        folder = course.feedback_dir(r.student, assignment)
        graded = course.autograded(r.student, assignment).is_dir()
        if not r.error and graded:
            with _quiet():
                outcome = api.generate_feedback(assignment, r.student, force=True)
            if not outcome.get("success"):  # one student's problem must not stop the others
                r = dataclasses.replace(r, error=f"feedback could not be generated: {_summarise_error(outcome)}")
        if r.error or not graded:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{assignment}.html").write_text(_error_page(assignment, r))
        folders[r.student] = folder
    return folders


def _error_page(assignment, result):
    message = html.escape(result.error or "the submission could not be graded")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment}: feedback</title></head>"
            f"<body><h1>{assignment}: your submission could not be graded</h1><p>{message}</p>"
            "<p>Score: 0. Open the notebook you submitted in Jupyter to check that it opens, "
            "then submit it again or ask your instructor.</p></body></html>")


# ---------------------------------------------------------------- export and stats


def export(course, path):
    """Write one CSV row per student and assignment: scores, and points awaiting manual grading."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with course.gradebook() as gb, open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score", "auto_score", "pending_manual"])
        for assignment in gb.assignments:
            for student in gb.students:
                try:
                    sub = gb.find_submission(assignment.name, student.id)
                except Exception:
                    writer.writerow([student.id, assignment.name, 0, assignment.max_score, 0, 0])
                    continue
                grades = [g for nb in sub.notebooks for g in nb.grades]
                auto = sum(g.auto_score or 0 for g in grades if g.cell_type == "code")
                pending = sum(g.max_score for g in grades if g.needs_manual_grade)
                writer.writerow([student.id, assignment.name, sub.score, sub.max_score, auto, pending])
    return path


def stats(course, assignment):
    """Which test cells fail most, and the most frequent diagnosed mistakes.

    Returns (cells, mistakes): lists of (name, count, total students) sorted by count.
    """
    failures, mistakes, total = Counter(), Counter(), 0
    with course.gradebook() as gb:
        for sub in gb.assignment_submissions(assignment):
            total += 1
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.cell_type == "code" and (g.auto_score or 0) < g.max_score:
                        failures[g.name] += 1
    for student in course.students(assignment):
        for path in course.autograded(student, assignment).glob("*.ipynb"):
            for name in _diagnoses(path):
                mistakes[name] += 1
    return ([(k, v, total) for k, v in failures.most_common()],
            [(k, v, total) for k, v in mistakes.most_common()])


def plot_stats(cells, path, title=""):
    """A bar chart of the share of students failing each test cell (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name.removeprefix("test_") for name, _, _ in cells][::-1]
    shares = [count / max(1, total) for _, count, total in cells][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.2))
    ax.barh(names, shares, color="tab:red")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of submissions failing the test")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _diagnoses(path):
    """The 'likely mistake' names in a graded notebook's error outputs."""
    names = set()
    for cell in nbformat.read(str(path), as_version=4).cells:
        for out in cell.get("outputs", []):
            for line in out.get("traceback", []) if out.get("output_type") == "error" else []:
                if "likely mistake:" in line:
                    names.add(line.split("likely mistake:", 1)[1].split(".")[0].strip())
    return names

