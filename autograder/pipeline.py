"""The instructor's pipeline: release, collect, grade, feedback, export, stats.

Each step is a function of a :class:`Course` (the course root and its nbgrader
config); ``python -m autograder`` exposes them as commands, in this order:

    release -> collect -> grade -> feedback -> export -> stats

Every step goes through nbgrader's own API, so plain ``nbgrader`` commands on the
same folder see the same gradebook and files.
"""
import contextlib
import csv
import dataclasses
import filecmp
import hashlib
import html
import io
import logging
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
    regraded: bool = True         # False: unchanged since its last grade, which was kept (only_changed)
    seconds: float = 0.0          # the autograde's time on its worker (0 when not graded now)
    worker: str = ""              # the Dask worker that graded it

    @property
    def failed_cells(self):
        return tuple(name for name, (score, top) in self.cells.items() if score < top)

    @property
    def status(self):
        return self._outcome() + (f" | notes: {'; '.join(self.flags)}" if self.flags else "")

    def _outcome(self):
        if not self.regraded:
            return "unchanged, grade kept: " + dataclasses.replace(self, regraded=True)._outcome()
        if self.error:
            return f"not graded: {self.error}"
        failed = self.failed_cells
        if not failed:
            return "all tests passed"
        shown = ", ".join(name.removeprefix("test_") for name in failed[:4])
        more = f" (+{len(failed) - 4} more)" if len(failed) > 4 else ""
        return f"failed {len(failed)}/{len(self.cells)}: {shown}{more}"


INTAKE_DIR = "intake"  # grading/intake/<student>/<assignment>/: the repaired copy nbgrader grades
DIGESTS = "graded.sqlite"  # grading/graded.sqlite: what each student's grades were computed from, and how long it took


def grade(course, assignment, students=None, progress=True, jobs=1, scheduler=None, only_changed=False):
    """Autograde every submission (nbgrader autograde, one kernel per student) on a Dask cluster.

    Each submission is first read by the grader (autograder/intake.py): never
    through a link, repaired where an honest student's notebook would otherwise
    fail as a whole, and written to grading/intake/, which is what gets graded; the
    files in grading/submitted/ stay as collected. A submission that cannot be
    graded (not a notebook, say) gets score 0 and an ``error``; the others are
    graded regardless.

    The autograding itself runs on the workers of a Dask cluster (autograder/cluster.py):
    the scheduler at ``scheduler`` (``tcp://host:8786``; without it, Dask's own
    ``scheduler-address`` setting, e.g. ``DASK_SCHEDULER_ADDRESS``, as ``distributed.Client()``
    reads it), or a local cluster of ``jobs`` worker processes started for this call. Workers
    return each student's autograded notebook and scores; only this process writes the
    gradebook, one student at a time, as results arrive (nbgrader's own SaveAutoGrades and
    AssignLatePenalties on the returned notebook: :class:`Recorder`). A task whose worker died is run again by Dask
    on another worker, and its student is recorded once.

    ``only_changed``: grade only the students whose submission (as repaired), assignment or
    grader code changed since they were last graded (:func:`submission_digest`); the others
    keep their grades untouched (``Result.regraded`` is False).

    Raises SetupError when nothing can be graded (no assignment, workers that cannot grade
    as asked), GradebookError when the gradebook cannot be used: no zero is written for
    anyone then. Returns a list of Result, in the order of ``students``.
    """
    from . import cluster
    scheduler = scheduler or configured_scheduler()
    students = students or course.students(assignment)
    notebook, source_cells = _assignment_in_gradebook(course, assignment)
    intakes = {s: _prepare(course, s, assignment, notebook, source_cells) for s in students}
    problems = {s: intake_.error or None for s, intake_ in intakes.items()}
    sandbox = bool(course.config.ResilientExecute.sandbox)
    context_code = cluster.code_fingerprint(assignment)
    context = _digest_context(course, assignment, sandbox, context_code)
    jobs_by_student = {s: _job(course, s, assignment, notebook, context) for s in students if problems[s] is None}
    with _gradebook(course) as gb:  # the unreadable ones are listed in the export, with 0
        for student, problem in problems.items():
            if problem is not None:
                gb.update_or_create_student(student)
        manual = {s: _manual_grades(gb, assignment, s) for s in students}
        unchanged = _unchanged(course, gb, assignment, jobs_by_student) if only_changed else set()
        todo = [job for s, job in jobs_by_student.items() if s not in unchanged]
        snapshot = cluster.assignment_gradebook(gb, assignment) if todo else b""
    _forget_digests(course, assignment, [s for s in students if s not in unchanged])
    bar = tqdm(total=len(students), desc=f"grading {assignment}", unit="student", disable=not progress)
    bar.update(len(students) - len(todo))
    details = {}
    if todo:
        setup = cluster.Setup(assignment, snapshot, cluster.supporting_files(course.path("solutions", assignment)),
                              course.timeout, sandbox, context_code)
        recorder = Recorder(course, assignment, notebook)
        try:
            with cluster.Cluster(scheduler, jobs) as engine:
                for job, future in engine.map(setup, todo):
                    problems[job.student], details[job.student] = _outcome(course, assignment, recorder,
                                                                           context_code, job, future)
                    bar.update()
        finally:
            recorder.close()
    bar.close()
    for student in students:
        intake.remove_links(course.autograded(student, assignment))  # nothing the grader reads later is a link
    with _gradebook(course) as gb:
        for student in students:
            _restore_manual_review(gb, assignment, student, manual[student])
    results = [_result(course, assignment, s, problems[s], intakes[s].notes) for s in students]
    for r in results:
        r.regraded = r.student not in unchanged
        r.seconds, r.worker, note = details.get(r.student, (0.0, "", ""))
        r.flags += [note] if note else []
    return results


def configured_scheduler():
    """Dask's ``scheduler-address`` setting (DASK_SCHEDULER_ADDRESS, or a Dask config file), or None:
    a standing cluster named once for every ``grade`` (and the test session's shared cluster)."""
    import dask
    return dask.config.get("scheduler-address", None) or None


def _outcome(course, assignment, recorder, setup_code, job, future):
    """Record one finished task: (problem or None, (seconds, worker, note))."""
    from . import cluster
    try:
        outcome = future.result()
    except cluster.WorkerSetupError as exc:
        raise SetupError(f"{exc}. The students recorded so far keep their grades.") from None
    except Exception as exc:  # the task failed on every worker it was given (KilledWorker...)
        recorder.record({"student": job.student, "problem": "x"})
        return f"grading could not finish: {type(exc).__name__}: {str(exc)[:150]}", (0.0, "", "")
    problem = recorder.record(outcome)
    same_code = outcome["code"] == setup_code  # graded by other code: graded again next time
    _store_digest(course, assignment, job.student, job.digest if problem is None and same_code else None,
                  outcome["seconds"], outcome["worker"])
    note = "" if same_code else (f"graded by a worker ({outcome['worker']}) whose grader code differs from "
                                 "this machine's: install the same course package on every worker")
    return problem, (outcome["seconds"], outcome["worker"], note)


def _job(course, student, assignment, notebook, context):
    """The repaired submission in grading/intake/ as a cluster.Job, with its digest."""
    from . import cluster
    folder = course.path(course_settings.GRADING_DIR, INTAKE_DIR, student, assignment)
    data = intake.read_regular_file(folder / notebook)
    try:
        timestamp = intake.read_regular_file(folder / "timestamp.txt", 4096)
    except (OSError, ValueError):
        timestamp = None
    return cluster.Job(student, notebook, data, timestamp, submission_digest(context, data, timestamp))


def _digest_context(course, assignment, sandbox, code):
    """What, besides the submission, decides a grade: the assignment's cells as recorded in the
    gradebook, the grader's code (cluster.code_fingerprint), the cell timeout and the sandbox."""
    with _gradebook(course) as gb:
        cells = sorted((c.name, c.cell_type, bool(c.locked), c.checksum or "")
                       for nb in gb.find_assignment(assignment).notebooks for c in nb.source_cells)
        points = sorted((c.name, c.max_score) for nb in gb.find_assignment(assignment).notebooks
                        for c in nb.grade_cells)
    return repr((cells, points, code, course.timeout, sandbox)).encode()


def submission_digest(context, notebook, timestamp):
    """sha256 of what a student's grade is computed from: the repaired notebook, its timestamp and
    the context (assignment, grader code, timeout, sandbox). Equal digests: the same grade."""
    digest = hashlib.sha256(context)
    for part in (notebook, timestamp or b""):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _digests_db(course):
    import sqlite3
    db = sqlite3.connect(course.path(course_settings.GRADING_DIR, DIGESTS))
    db.execute("CREATE TABLE IF NOT EXISTS graded (assignment TEXT, student TEXT, digest TEXT, seconds REAL, "
               "worker TEXT, PRIMARY KEY (assignment, student))")
    return db


def stored_digests(course, assignment):
    """{student: digest of the submission their recorded grades come from}."""
    with contextlib.closing(_digests_db(course)) as db:
        return dict(db.execute("SELECT student, digest FROM graded WHERE assignment = ? AND digest IS NOT NULL",
                               (assignment,)))


def grading_times(course, assignment):
    """{student: (seconds their last autograde took on its worker, the worker)}."""
    with contextlib.closing(_digests_db(course)) as db:
        return {s: (t, w) for s, t, w in db.execute(
            "SELECT student, seconds, worker FROM graded WHERE assignment = ?", (assignment,))}


def _store_digest(course, assignment, student, digest, seconds=0.0, worker=""):
    with contextlib.closing(_digests_db(course)) as db, db:
        db.execute("INSERT OR REPLACE INTO graded VALUES (?, ?, ?, ?, ?)", (assignment, student, digest, seconds, worker))


def _forget_digests(course, assignment, students):
    """Before a student is graded again: a run stopped midway must not leave an old digest
    standing for a submission whose grade was not recorded."""
    with contextlib.closing(_digests_db(course)) as db, db:
        db.executemany("UPDATE graded SET digest = NULL WHERE assignment = ? AND student = ?",
                       [(assignment, s) for s in students])


def _unchanged(course, gb, assignment, jobs_by_student):
    """Students whose recorded grade comes from exactly this submission (and whose autograded
    notebook and gradebook submission are still there)."""
    from nbgrader.api import MissingEntry
    stored, out = stored_digests(course, assignment), set()
    for student, job in jobs_by_student.items():
        if stored.get(student) != job.digest or not any(course.autograded(student, assignment).glob("*.ipynb")):
            continue
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            continue
        out.add(student)
    return out


class Recorder:
    """Writes the workers' results into the gradebook and grading/autograded/: the coordinator's part.

    What nbgrader's autograde does after executing a notebook, done on the notebook a worker
    returned, through one gradebook connection for the whole run (nbgrader's autograde opens a new
    one per step and student: about 0.4 s of SQLAlchemy set-up per student; this costs a few ms).
    The student and the submission (with the returned timestamp.txt) are created or updated, the
    autograded folder is replaced by the returned files, nbgrader's own SaveAutoGrades scores the
    notebook (a manual grade stays, flagged for review as nbgrader does) and nbgrader's
    AssignLatePenalties runs when the submission is late.
    """

    def __init__(self, course, assignment, notebook):
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory
        self.course, self.assignment, self.notebook = course, assignment, notebook
        self.config = course.config
        self.coursedir = CourseDirectory(config=self.config)
        self.gb = Gradebook(self.config.CourseDirectory.db_url)

    def close(self):
        self.gb.close()

    def record(self, outcome):
        """Record one worker's result; None, or why the student could not be graded."""
        import warnings
        import sqlalchemy.exc
        with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warning, harmlessly
            warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)
            return self._record(outcome)

    def _record(self, outcome):
        import sqlalchemy.exc
        student = outcome["student"]
        try:
            self.gb.update_or_create_student(student)
            if outcome["problem"]:
                return outcome["problem"]
            folder = self._write_files(student, outcome["files"])
            if not (folder / self.notebook).is_file():
                return "the worker returned no autograded notebook"
            timestamp = self.coursedir.get_existing_timestamp(str(folder))
            submission = (self.gb.update_or_create_submission(self.assignment, student, timestamp=timestamp)
                          if timestamp else self.gb.update_or_create_submission(self.assignment, student))
            nb = nbformat.reads(intake.read_regular_file(folder / self.notebook).decode(), as_version=4)
            resources = {"nbgrader": {"notebook": pathlib.Path(self.notebook).stem, "assignment": self.assignment,
                                      "student": student, "db_url": self.config.CourseDirectory.db_url}}
            _save_auto_grades(self.gb, self.config).preprocess(nb, resources)
            self._late_penalty(submission, nb, resources)
            self._check_scores(student, outcome["scores"])
        except sqlalchemy.exc.OperationalError as exc:
            self.gb.db.rollback()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise GradebookError(f"the gradebook could not be used while recording {student} ({reason}): "
                                 "another program may be using it (nbgrader formgrader, a second grading run). "
                                 "Close it and grade again; the students recorded so far keep their grades.") from None
        return None

    def _write_files(self, student, files):
        """grading/autograded/<student>/<assignment>/ := the returned files (never through a link)."""
        folder = intake.make_private_folder(self.course.root, course_settings.GRADING_DIR, "autograded",
                                            student, self.assignment)
        shutil.rmtree(folder)  # rmtree removes links, never follows them
        folder.mkdir()
        for name, data in files.items():
            parts = pathlib.PurePosixPath(name).parts
            if not parts or name.startswith("/") or any(p in ("..", ".") for p in parts):
                continue
            parent = intake.make_private_folder(folder, *parts[:-1]) if len(parts) > 1 else folder
            intake.write_new_file(parent / parts[-1], data)
        return folder

    def _late_penalty(self, submission, nb, resources):
        from nbgrader.preprocessors import AssignLatePenalties
        if submission.total_seconds_late > 0:  # nbgrader's own rules (and plugin) for late work
            AssignLatePenalties(config=self.config).preprocess(nb, resources)
            self.gb.db.expire_all()
            return
        notebook = self.gb.find_submission_notebook(pathlib.Path(self.notebook).stem, self.assignment,
                                                    submission.student.id)
        notebook.late_submission_penalty = None
        self.gb.db.commit()

    def _check_scores(self, student, computed):
        """The gradebook must now hold the automatic scores the worker computed: same notebook, same rules."""
        submission = self.gb.find_submission(self.assignment, student)
        recorded = {g.name: g.auto_score for nb in submission.notebooks for g in nb.grades}
        differ = sorted(c for c, (auto, _, _) in computed.items() if recorded.get(c) != auto)
        if differ:
            raise RuntimeError(f"internal error: the scores recorded for {student} differ from the worker's "
                               f"on {', '.join(differ[:5])}; grading stopped")


def _save_auto_grades(gradebook, config):
    """nbgrader's SaveAutoGrades (its per-cell scores and comments), writing through ``gradebook``."""
    from nbgrader.preprocessors import SaveAutoGrades
    from nbgrader.preprocessors.base import NbGraderPreprocessor

    class SaveAutoGradesIn(SaveAutoGrades):
        def preprocess(self, nb, resources):
            info = resources["nbgrader"]
            self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
            self.student_id, self.db_url, self.gradebook = info["student"], info["db_url"], gradebook
            return NbGraderPreprocessor.preprocess(self, nb, resources)  # the cells, without a new connection

    return SaveAutoGradesIn(config=config)


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
    read.notebook = None  # written; a class's worth of parsed notebooks need not stay in memory
    return read


def _copy_timestamp(submitted, folder):
    """nbgrader's timestamp.txt (late penalties), when it is a small regular file."""
    try:
        intake.write_new_file(folder / "timestamp.txt", intake.read_regular_file(submitted / "timestamp.txt", 4096))
    except (OSError, ValueError):
        pass


def _autograde(root, timeout, sandbox, assignment, student):
    """nbgrader autograde of grading/intake/<student> (on a worker, in its private course: see
    cluster.autograde); returns None, or why it failed."""
    course = Course(root, timeout, sandbox)
    api = course.api(submitted_directory=os.path.join(course_settings.GRADING_DIR, INTAKE_DIR))
    with _quiet():
        outcome = api.autograde(assignment, student, force=True, create=True)
    if outcome.get("success"):
        return None
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
