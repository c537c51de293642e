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
import logging
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
from collections import Counter

import nbformat
from nbgrader.plugins import ExportPlugin
from tqdm.auto import tqdm

from . import course as course_settings
from . import intake


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

    def api(self, **course_directory):
        """nbgrader's API on this course; ``course_directory`` overrides CourseDirectory settings."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        config = self.config
        for key, value in course_directory.items():
            setattr(config.CourseDirectory, key, value)
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


def collect(course, assignment, source, notes=None):
    """Copy submissions into grading/submitted/<student>/<assignment>/.

    ``source`` holds either one notebook per student (``<student>.ipynb``) or one
    folder per student (``<student>/**/*.ipynb``, e.g. an LMS download). The notebook is
    saved under the released notebook's name, whatever the student called it; in a
    folder with several notebooks, the one under the released name is taken, else
    the one with most of the assignment's cells. Links are skipped, never followed.
    ``notes`` (a list) receives one line per choice or skipped file.
    Returns the list of students collected.

    Not nbgrader's ZipCollectApp: it maps files to students by a file-name regular
    expression and copies every matching file (following links), while downloads
    here are one file or one folder per student whose notebook may have any name.
    """
    notes = [] if notes is None else notes
    source = pathlib.Path(source)
    released = sorted(course.path("exercises", assignment).glob("*.ipynb"))
    if len(released) != 1:
        raise ValueError(f"collect expects one released notebook in exercises/{assignment}, "
                         f"found {[p.name for p in released]}")
    name, expected_ids = released[0].name, _grade_ids(released[0])
    students = []
    for entry in sorted(source.iterdir()):
        student, candidates = _student_files(entry, notes)
        chosen, why = intake.choose_notebook(candidates, name, expected_ids)
        if chosen is None:
            continue
        notes += [f"{student}: {line}" for line in why]
        try:
            data = intake.read_regular_file(chosen, limit=COLLECT_LIMIT)
        except (OSError, ValueError) as exc:
            notes.append(f"{student}: skipped {chosen.name}: {exc}")
            continue
        folder = intake.make_private_folder(course.root, course_settings.GRADING_DIR, "submitted", student, assignment)
        intake.write_new_file(folder / name, data)
        students.append(student)
    return students


COLLECT_LIMIT = 200 * 1024 * 1024  # copied as they are: grade explains a notebook that is too large


def _student_files(entry, notes):
    """(student, regular .ipynb files) for one entry of a download folder; links skipped."""
    if entry.is_symlink():
        notes.append(f"skipped {entry.name}: a symbolic link")
        return entry.name, []
    if entry.is_file():
        return entry.stem, [entry] if entry.suffix == ".ipynb" else []
    files = []
    for dirpath, dirnames, filenames in os.walk(entry):  # does not descend into linked folders
        for link in [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            notes.append(f"{entry.name}: skipped {link}: a symbolic link")
        for filename in sorted(filenames):
            path = pathlib.Path(dirpath, filename)
            if path.suffix != ".ipynb":
                continue
            if path.is_symlink():
                notes.append(f"{entry.name}: skipped {path.relative_to(entry)}: a symbolic link")
            elif path.is_file():
                files.append(path)
    return entry.name, sorted(files)


def _grade_ids(path):
    nb = nbformat.read(str(path), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})]


# ---------------------------------------------------------------- grade


class GradebookError(RuntimeError):
    """The gradebook cannot be read or written: stop, rather than record wrong grades."""


class SetupError(RuntimeError):
    """Something stops every student (no assignment to grade against): reported once, with the fix."""


@contextlib.contextmanager
def _gradebook(course):
    """course.gradebook(), with a database error turned into one plain GradebookError."""
    import sqlalchemy.exc
    try:
        with course.gradebook() as gb:
            yield gb
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise GradebookError(
            f"the gradebook {course.path(course_settings.GRADING_DIR, 'gradebook.db')} could not be used "
            f"({reason}). Another program may be using it (nbgrader formgrader, a second grading run): "
            "close it and run the command again. No grade was changed by this run's failed step.") from None


@dataclasses.dataclass
class Result:
    """One student's autograde: scores from the gradebook, or why grading failed."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    pending_manual: float = 0.0   # points awaiting a human (written answers)
    cells: dict = dataclasses.field(default_factory=dict)  # test cell -> (auto score, max score)
    error: str = ""               # set when the submission could not be graded at all
    flags: list = dataclasses.field(default_factory=list)  # what the grader noticed, in plain words

    @property
    def failed_cells(self):
        return tuple(name for name, (score, top) in self.cells.items() if score < top)

    @property
    def status(self):
        return self._outcome() + (f" | notes: {'; '.join(self.flags)}" if self.flags else "")

    def _outcome(self):
        if self.error:
            return f"not graded: {self.error}"
        failed = self.failed_cells
        if not failed:
            return "all tests passed"
        shown = ", ".join(name.removeprefix("test_") for name in failed[:4])
        more = f" (+{len(failed) - 4} more)" if len(failed) > 4 else ""
        return f"failed {len(failed)}/{len(self.cells)}: {shown}{more}"


INTAKE_DIR = "intake"  # grading/intake/<student>/<assignment>/: the repaired copy nbgrader grades


def grade(course, assignment, students=None, progress=True, jobs=1):
    """Autograde every submission (nbgrader autograde, one kernel per student).

    Each submission is first read by the grader (autograder/intake.py): never
    through a link, repaired where an honest student's notebook would otherwise
    fail as a whole, and written to grading/intake/, which nbgrader grades; the
    files in grading/submitted/ stay as collected. A submission that cannot be
    graded (not a notebook, say) gets score 0 and an ``error``; the others are
    graded regardless. ``jobs`` > 1 grades that many students at once, in separate
    processes; a student whose grading fails in parallel (the gradebook was busy,
    say) is graded again on their own.

    Raises SetupError when nothing can be graded (no assignment), GradebookError
    when the gradebook cannot be used: no zero is written for anyone then.
    Returns a list of Result, in the order of ``students``.
    """
    students = students or course.students(assignment)
    notebook, source_cells = _assignment_in_gradebook(course, assignment)
    intakes = {s: _prepare(course, s, assignment, notebook, source_cells) for s in students}
    problems = {s: intake_.error or None for s, intake_ in intakes.items()}
    with _gradebook(course) as gb:  # the unreadable ones are listed in the export, with 0
        for student, problem in problems.items():
            if problem is not None:
                gb.update_or_create_student(student)
        manual = {s: _manual_grades(gb, assignment, s) for s in students}
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
    try:
        for student in todo:
            problems[student] = _autograde(*args, student)
            if problems[student] == DATABASE_FAILURE:
                raise GradebookError(f"the gradebook could not be used while grading {student}: another program "
                                     "may be using it (nbgrader formgrader, a second grading run). Close it and "
                                     "grade again; the students graded so far keep their grades.")
            bar.update()
    finally:
        course_settings.SPARES.shutdown()  # the kernel started for a next student (pool workers' die with them)
    bar.close()
    for student in students:
        intake.remove_links(course.autograded(student, assignment))  # nothing the grader reads later is a link
    with _gradebook(course) as gb:
        for student in students:
            _restore_manual_review(gb, assignment, student, manual[student])
    return [_result(course, assignment, s, problems[s], intakes[s].notes) for s in students]


def _assignment_in_gradebook(course, assignment):
    """(notebook name, its SourceCells); records the assignment from solutions/ when missing.

    A fresh clone has no gradebook (it is not committed), and nbgrader autogrades
    only against an assignment that generate_assignment recorded there.
    """
    from nbgrader.api import MissingEntry
    with _gradebook(course) as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            notebooks = []
    if not notebooks:
        _record_assignment(course, assignment)
        with _gradebook(course) as gb:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
    if len(notebooks) != 1:
        raise SetupError(f"the gradebook's assignment {assignment!r} has {len(notebooks)} notebooks; "
                         "this course grades one notebook per assignment. "
                         f"Run `python -m autograder release {assignment}` to record it again.")
    with _gradebook(course) as gb:
        return f"{notebooks[0]}.ipynb", intake.source_cells_from_gradebook(gb, notebooks[0], assignment)


def _record_assignment(course, assignment):
    """Record the assignment in the gradebook from solutions/, as `release` does, leaving exercises/ alone."""
    if not course.path("solutions", assignment).is_dir():
        raise SetupError(
            f"the gradebook has no assignment {assignment!r} and there is no solutions/{assignment}/ to "
            f"create it from. Run the command in the course root (the repository root, or pass --course-dir), "
            f"or record it with `python -m autograder release {assignment}`.")
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        with _quiet():
            result = course.api(release_directory=scratch).generate_assignment(assignment, force=True)
    if not result.get("success"):
        raise SetupError(f"the gradebook has no assignment {assignment!r}, and recording it from "
                         f"solutions/{assignment}/ failed:\n{_summarise_error(result)}\n"
                         f"Run `python -m autograder release {assignment}` to see the whole error.")
    print(f"note: the gradebook had no assignment {assignment!r} (a fresh clone?): "
          f"recorded it from solutions/{assignment}/", file=sys.stderr)


def _prepare(course, student, assignment, notebook, source_cells):
    """Read the student's submission and write the notebook nbgrader will grade: an Intake."""
    submitted = course.submitted(student, assignment)
    read = intake.read_submission(submitted, notebook, source_cells)
    folder = intake.make_private_folder(course.root, course_settings.GRADING_DIR, INTAKE_DIR, student, assignment)
    shutil.rmtree(folder)  # rmtree removes links, never follows them
    folder.mkdir()
    if read.notebook is not None:
        intake.write_new_file(folder / notebook, nbformat.writes(read.notebook).encode())
        _copy_timestamp(submitted, folder)
    intake.make_private_folder(course.root, course_settings.GRADING_DIR, "autograded", student)
    return read


def _copy_timestamp(submitted, folder):
    """nbgrader's timestamp.txt (late penalties), when it is a small regular file."""
    try:
        intake.write_new_file(folder / "timestamp.txt", intake.read_regular_file(submitted / "timestamp.txt", 4096))
    except (OSError, ValueError):
        pass


DATABASE_FAILURE = "the gradebook could not be used (database error)"


def _autograde(root, timeout, sandbox, assignment, student):
    """nbgrader autograde of grading/intake/<student>; returns None, or why it failed."""
    course = Course(root, timeout, sandbox)
    api = course.api(submitted_directory=os.path.join(course_settings.GRADING_DIR, INTAKE_DIR))
    with _quiet():
        outcome = api.autograde(assignment, student, force=True, create=True)
    if outcome.get("success"):
        return None
    log = outcome.get("log") or ""
    if "error accessing the nbgrader database" in log or "database is locked" in log:
        return DATABASE_FAILURE
    return _summarise_error(outcome)


def _summarise_error(outcome):
    """The most telling line of nbgrader's log: the last exception, not its 'see above' wrapper."""
    lines = "\n".join([outcome.get("log") or "", outcome.get("error") or ""]).strip().splitlines()
    causes = [line.strip() for line in lines if _looks_like_exception(line) and "Please see" not in line]
    text = causes[-1] if causes else (lines[-1] if lines else "nbgrader autograde failed")
    return text[:200]


def _looks_like_exception(line):
    head = line.strip().split(":", 1)[0]
    return head.endswith(("Error", "Exception")) and " " not in head


def _manual_grades(gb, assignment, student):
    """{(notebook, cell): (manual score, needs review, auto score)} before a regrade."""
    from nbgrader.api import MissingEntry
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return {}
    return {(nb.name, g.name): (g.manual_score, g.needs_manual_grade, g.auto_score)
            for nb in submission.notebooks for g in nb.grades}


def _restore_manual_review(gb, assignment, student, before):
    """Undo nbgrader's "needs manual grade" on cells a human already graded and the regrade did not change.

    nbgrader's SaveAutoGrades flags every cell with a manual score for review on
    each autograde, so the pending column rose with every regrade although nothing
    had changed; the manual score itself is kept by nbgrader.
    """
    from nbgrader.api import MissingEntry
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return
    changed = False
    for nb in submission.notebooks:
        for g in nb.grades:
            old = before.get((nb.name, g.name))
            if old and old[0] is not None and not old[1] and g.manual_score is not None \
                    and g.needs_manual_grade and g.auto_score == old[2]:
                g.needs_manual_grade, changed = False, True
    if changed:
        gb.db.commit()


def _result(course, assignment, student, problem, notes=()):
    from nbgrader.api import MissingEntry
    result = Result(student, error=problem or "", flags=list(notes))
    with _gradebook(course) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            result.max_score = gb.find_assignment(assignment).max_score
            return result
        grades = [g for nb in submission.notebooks for g in nb.grades]
        result.max_score = submission.max_score
        if problem:
            return result
        result.score = submission.score
        result.pending_manual = sum(g.max_score for g in grades if g.needs_manual_grade)
        result.cells = {g.name: (g.auto_score or 0.0, g.max_score) for g in grades if g.cell_type == "code"}
    for path in sorted(course.autograded(student, assignment).glob("*.ipynb")):
        result.flags += intake.read_metadata_flags(path)
    return result


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

    Students whose submission could not be graded get a page that says why. Links
    in the autograded folders are removed first: nbgrader copies that folder's files
    into the feedback (and would copy a link's target). Returns the feedback folders by student.
    """
    if results is None:
        notebook, source_cells = _assignment_in_gradebook(course, assignment)
        results = []
        for s in course.students(assignment):
            read = intake.read_submission(course.submitted(s, assignment), notebook, source_cells)
            results.append(Result(s, error=read.error, flags=read.notes))
    api, folders = course.api(), {}
    for r in tqdm(results, desc="feedback", unit="student", leave=False):
        folder = intake.make_private_folder(course.root, course_settings.GRADING_DIR, "feedback", r.student, assignment)
        intake.remove_links(folder)
        graded_folder = course.autograded(r.student, assignment)
        intake.remove_links(graded_folder)
        graded = graded_folder.is_dir() and any(graded_folder.glob("*.ipynb"))
        if not r.error and graded:
            with _quiet():
                outcome = api.generate_feedback(assignment, r.student, force=True)
            if not outcome.get("success"):  # one student's problem must not stop the others
                r = dataclasses.replace(r, error=f"feedback could not be generated: {_summarise_error(outcome)}")
        if r.error or not graded:
            folder = intake.make_private_folder(course.root, course_settings.GRADING_DIR, "feedback",
                                                r.student, assignment)
            intake.write_new_file(folder / f"{assignment}.html", _error_page(assignment, r).encode())
        folders[r.student] = folder
    return folders


def _error_page(assignment, result):
    message = html.escape(result.error or "the submission could not be graded")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.flags)
    notes = f"<p>Also noted:</p><ul>{notes}</ul>" if notes else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment}: feedback</title></head>"
            f"<body><h1>{assignment}: your submission could not be graded</h1><p>{message}</p>{notes}"
            "<p>Score: 0. Open the notebook you submitted in Jupyter to check that it opens, "
            "then submit it again or ask your instructor.</p></body></html>")


# ---------------------------------------------------------------- export and stats


EXPORT_COLUMNS = ["student", "assignment", "score", "max_score", "auto_score", "pending_manual"]


class CourseCsvExport(ExportPlugin):
    """nbgrader's export plugin for this course: one CSV row per student and assignment.

    Configured as ``ExportApp.plugin_class`` (autograder/course.py), so that plain
    ``nbgrader export`` writes the same file as ``python -m autograder export``.
    A student without a submission gets a 0 row (nbgrader's MissingEntry); any
    other database error stops the export before the file is replaced.
    """

    def export(self, gradebook):
        dest = pathlib.Path(self.to or os.path.join(self.config.CourseDirectory.root or ".",
                                                    course_settings.GRADING_DIR, "grades.csv"))
        rows = list(self.rows(gradebook))  # read everything first: a failure leaves no half-written file
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", newline="", dir=dest.parent, suffix=".csv", delete=False) as f:
            writer = csv.writer(f)
            writer.writerow(EXPORT_COLUMNS)
            writer.writerows(rows)
        os.replace(f.name, dest)
        self.log.info("Exported grades to %s", dest)

    def rows(self, gradebook):
        from nbgrader.api import MissingEntry
        for assignment in gradebook.assignments:
            if self.assignment and assignment.name not in self.assignment:
                continue
            for student in gradebook.students:
                if self.student and student.id not in self.student:
                    continue
                try:
                    sub = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    yield [student.id, assignment.name, 0, assignment.max_score, 0, 0]
                    continue
                grades = [g for nb in sub.notebooks for g in nb.grades]
                auto = sum(g.auto_score or 0 for g in grades if g.cell_type == "code")
                pending = sum(g.max_score for g in grades if g.needs_manual_grade)
                yield [student.id, assignment.name, sub.score, sub.max_score, auto, pending]


def export(course, path):
    """Write one CSV row per student and assignment: scores, and points awaiting manual grading.

    Raises GradebookError (and leaves ``path`` as it was) when the gradebook cannot be read.
    """
    path = pathlib.Path(path)
    with _gradebook(course) as gb:
        CourseCsvExport(to=str(path), config=course.config).export(gb)
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
    """The ids of the mistakes named in a graded notebook: the grader's TrustedVerdicts
    stores them in each test cell's metadata (``nn_course.mistakes``), so no text is parsed."""
    ids = set()
    for cell in nbformat.read(str(path), as_version=4).cells:
        named = cell.get("metadata", {}).get("nn_course", {}).get("mistakes", [])
        ids.update(str(i) for i in named if isinstance(i, str))
    return ids
