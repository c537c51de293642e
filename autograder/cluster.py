"""Grading on Dask workers: the task that autogrades one student, and the cluster it runs on.

``pipeline.grade`` is the coordinator. It reads every submission (autograder/intake.py),
then sends one task per student to a Dask cluster: an existing one
(``--scheduler tcp://HOST:8786``) or, without it, a local cluster of ``jobs`` worker
processes on this machine. Both are the same code path.

A task (:func:`autograde`) runs on a worker and touches nothing of the course folder: it
builds a private course in a temporary folder from what the coordinator sent (a gradebook
that holds only the assignment, the assignment's supporting files, the student's repaired
notebook) and runs the same nbgrader autograde as a single machine would, with the course's
configuration: the sandbox, the kernel's limits, ResilientExecute and TrustedVerdicts all run
on the worker. It returns the autograded folder's files and the scores. Only the coordinator
writes the real gradebook, so a task that runs twice (its worker died, Dask ran it again
elsewhere) cannot record a student twice.

A worker needs this package (the same code as the coordinator: a result graded by other code
is flagged, see :func:`code_fingerprint`), nbgrader, and bubblewrap when the coordinator's
kernels are sandboxed (a worker without it refuses to grade); nothing of the course folder.
"""
import dataclasses
import hashlib
import logging
import os
import pathlib
import tempfile
import time
import uuid

from . import course as settings

PACKAGE = pathlib.Path(__file__).resolve().parent
MAX_RETURNED_BYTES = 64 * 2**20   # an autograded folder larger than this is not sent back


class WorkerSetupError(RuntimeError):
    """A worker cannot grade as the coordinator asked (no sandbox where the coordinator's kernels are sandboxed)."""


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every task of one grading run shares; sent once to every worker."""

    assignment: str
    gradebook: bytes      # a gradebook (SQLite file) holding the assignment and no student
    files: tuple          # ((path relative to solutions/<assignment>, bytes), ...): supporting files
    timeout: int
    sandbox: bool
    code: str             # the coordinator's code_fingerprint(assignment)


@dataclasses.dataclass(frozen=True)
class Job:
    """One student's submission, as the coordinator read and repaired it."""

    student: str
    notebook_name: str
    notebook: bytes
    timestamp: bytes = None
    digest: str = ""


# The modules that decide a grade (the chapter's folder is added): the check engine and its helpers,
# the sandbox and kernel limits, the verdicts, the intake and this task. Tools around grading (the
# CLI, the book, reports) do not count.
GRADING_CODE = ("capstone.py", "checking.py", "cluster.py", "course.py", "data.py", "intake.py", "numerics.py",
                "pipeline.py", "records.py", "sampling.py", "speed.py", "transforms.py", "verdicts.py")


def code_fingerprint(assignment):
    """A hash of the grader's code for ``assignment``: GRADING_CODE and the chapter's folder (checks,
    references). Other chapters' files do not count: editing one chapter does not regrade another."""
    digest = hashlib.sha256()
    paths = [PACKAGE / name for name in GRADING_CODE] + sorted(PACKAGE.joinpath(assignment).rglob("*.py"))
    for path in paths:
        data = path.read_bytes() if path.is_file() else b"(none)"
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


_LOADED = {}


def _loaded_code(assignment):
    """This worker's code_fingerprint, taken at its first task of ``assignment``: the code it loaded."""
    return _LOADED.setdefault(assignment, code_fingerprint(assignment))


# ---------------------------------------------------------------- on a worker


def autograde(setup, job):
    """Autograde one student in a private temporary course; return what the coordinator records.

    Returns a dict: student, digest, problem (None, or why nbgrader could not grade), files
    ({name: bytes} of the autograded folder), scores ({cell: [auto score, max score, needs
    manual grade]}), seconds, worker (where it ran), code (this worker's code_fingerprint: the
    coordinator flags a result graded by other code than its own).
    """
    from . import pipeline
    _check_worker(setup)
    _loaded_code(setup.assignment)
    with tempfile.TemporaryDirectory(prefix="nn-course-task-") as tmp:
        root = pathlib.Path(tmp)
        grading = root / settings.GRADING_DIR
        grading.mkdir()
        (grading / "gradebook.db").write_bytes(setup.gradebook)
        for relative, data in setup.files:
            target = root / "solutions" / setup.assignment / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        intake = grading / pipeline.INTAKE_DIR / job.student / setup.assignment
        intake.mkdir(parents=True)
        (intake / job.notebook_name).write_bytes(job.notebook)
        if job.timestamp is not None:
            (intake / "timestamp.txt").write_bytes(job.timestamp)
        start = time.perf_counter()
        problem = pipeline._autograde(str(root), setup.timeout, setup.sandbox, setup.assignment, job.student)
        seconds = time.perf_counter() - start
        course = pipeline.Course(root, setup.timeout, setup.sandbox)
        return {"student": job.student, "digest": job.digest, "problem": problem, "seconds": seconds,
                "files": _returned_files(course.autograded(job.student, setup.assignment)),
                "scores": _scores(course, setup.assignment, job.student), "worker": _where(),
                "code": _loaded_code(setup.assignment)}


def _check_worker(setup):
    if setup.sandbox and not settings.sandbox_available():
        raise WorkerSetupError(f"the worker at {_where()} cannot start sandboxed kernels (bubblewrap, `bwrap`, "
                               "is missing or does not work there): install it, or grade with --no-sandbox")


def _returned_files(folder):
    """{name: bytes} of the regular files of the autograded folder (links never followed)."""
    from . import intake
    files, budget = {}, MAX_RETURNED_BYTES
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = intake.read_regular_file(path, limit=budget)
        except (OSError, ValueError):
            continue
        budget -= len(data)
        files[str(path.relative_to(folder))] = data
    return files


def _scores(course, assignment, student):
    from nbgrader.api import MissingEntry
    with course.gradebook() as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {g.name: [g.auto_score, g.max_score, g.needs_manual_grade]
                for nb in submission.notebooks for g in nb.grades}


def _where():
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def process_usage():
    """This process's CPU seconds (its reaped children, the kernels, included) and its own peak
    memory, for benchmarks (``client.run(process_usage)``). No child's peak: getrusage counts a child
    forked from the worker with the worker's pages until it execs (benchmarks/scale.py)."""
    import resource
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
            "peak_rss": own.ru_maxrss * 1024}


def shutdown_spares():
    """Stop the kernel a worker keeps started for its next student (the end of a grading run)."""
    settings.SPARES.shutdown()


# ---------------------------------------------------------------- on the coordinator


def assignment_gradebook(gb, assignment):
    """The bytes of a new gradebook that holds only ``assignment`` (its notebooks and cells, as
    recorded in ``gb``): what nbgrader's autograde reads on a worker (OverwriteCells restores
    the locked cells from it). No student and no grade leave the coordinator."""
    from nbgrader.api import Gradebook
    source = gb.find_assignment(assignment)
    with tempfile.TemporaryDirectory(prefix="nn-course-gradebook-") as tmp:
        path = pathlib.Path(tmp, "gradebook.db")
        with Gradebook(f"sqlite:///{path}") as copy:
            copy.add_assignment(assignment, duedate=source.duedate)
            for nb in source.notebooks:
                copy.add_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
                for c in nb.grade_cells:
                    copy.add_grade_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
                for c in nb.solution_cells:
                    copy.add_solution_cell(c.name, nb.name, assignment)
                for c in nb.task_cells:
                    copy.add_task_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
                for c in nb.source_cells:
                    copy.add_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type, locked=c.locked,
                                         source=c.source, checksum=c.checksum)
        return path.read_bytes()


def supporting_files(folder, ignore=("*.ipynb", ".ipynb_checkpoints", "__pycache__", "*.pyc")):
    """((relative path, bytes), ...) of the assignment's non-notebook files in solutions/<assignment>,
    which nbgrader's autograde copies over the student's (here: on the worker)."""
    import fnmatch
    folder = pathlib.Path(folder)
    out = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        relative = path.relative_to(folder)
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in ignore):
            continue
        if path.is_file() and not path.is_symlink():
            out.append((str(relative), path.read_bytes()))
    return tuple(out)


class Cluster:
    """A Dask client: on the scheduler at ``address``, or on a local cluster of ``workers`` processes
    (one thread each: a worker grades one student at a time) that is closed with this object.

    The local cluster's scheduler and workers are separate programs (``python -m dask spec``,
    Dask's SubprocessCluster), as ``dask scheduler`` and ``dask worker`` are on a real cluster: no
    worker is forked or spawned from the grading process, so nothing of its state (or of the
    script that called ``grade``) is run again in a worker.
    """

    def __init__(self, address=None, workers=1):
        from distributed import Client
        self.local = None
        if address:
            self.client = Client(address, timeout="30s")
        else:
            self.local = local_cluster(workers)
            self.client = Client(self.local)
            self.client.wait_for_workers(max(1, workers), timeout="120s")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.client.run(shutdown_spares)  # a remote worker keeps no idle kernel after the run
        except Exception:  # a worker that died meanwhile: nothing to stop there
            pass
        self.client.close()
        if self.local is not None:
            self.local.close()

    def workers(self):
        """The addresses of the workers connected now."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def map(self, setup, jobs):
        """Submit one task per job; yields (job, future) as each finishes (in any order)."""
        from distributed import as_completed
        shared = self.client.scatter(setup, broadcast=True, hash=False)
        run = uuid.uuid4().hex[:8]
        futures = {self.client.submit(autograde, shared, job, key=f"autograde-{run}-{job.student}", pure=False): job
                   for job in jobs}
        for future in as_completed(futures):
            yield futures.pop(future), future
            future.release()  # recorded: its result (a notebook) need not stay in a worker's memory


ORPHAN_TIMEOUT = "300s"
QUIET = {"DASK_LOGGING__DISTRIBUTED": "error", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


def local_cluster(workers):
    """Dask's SubprocessCluster on 127.0.0.1: a scheduler and ``workers`` workers (each under a
    nanny that restarts it if it dies), one thread each; they import this package from where the
    grading process found it."""
    from distributed.deploy.subprocess import SubprocessCluster
    env = {**QUIET, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE.parent), os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # inherited by the scheduler's and workers' processes as they start
    try:
        # Should the grading process be killed, its scheduler closes once idle and the workers without it.
        return SubprocessCluster(host="127.0.0.1", n_workers=max(1, workers), threads_per_worker=1,
                                 dashboard_address=None, silence_logs=logging.ERROR,
                                 scheduler_kwargs={"idle_timeout": ORPHAN_TIMEOUT},
                                 worker_kwargs={"silence_logs": logging.ERROR, "death_timeout": ORPHAN_TIMEOUT})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
