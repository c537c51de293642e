"""The nbgrader configuration of the course, shared by ``nbgrader_config.py`` and the CLI.

Folder layout (relative to the course root, the repository root by default):

    solutions/<assignment>/            nbgrader source (the instructor's notebooks)
    exercises/<assignment>/            the released student notebooks (committed)
    grading/submitted/<student>/<assignment>/   collected submissions  (gitignored)
    grading/autograded/..., grading/feedback/..., grading/gradebook.db (gitignored)
"""
import asyncio
import copy
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import weakref

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Unicode
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

ASSIGNMENTS = ("activations", "normalization")
GRADING_DIR = "grading"
DEFAULT_TIMEOUT = 30  # seconds per cell


class SandboxedKernelManager(AsyncKernelManager):
    """Start each student's kernel inside bubblewrap (``bwrap``).

    The kernel sees a read-only file system, an empty /tmp and home, no network
    (it talks to us over Unix sockets in a private folder), its own namespace for
    IPC and host name, and of the course only the package: solutions/ and grading/
    are hidden, except the student's own autograded folder, which is writable.
    """

    course_root = Unicode("", help="The course root, whose solutions/ and grading/ are hidden.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._private = tempfile.mkdtemp(prefix="course-kernel-")
        self.transport = "ipc"  # Unix sockets: TCP would need the network we remove
        self.connection_file = os.path.join(self._private, "connection.json")
        self.ip = os.path.join(self._private, "ipc")
        weakref.finalize(self, shutil.rmtree, self._private, True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        cwd = os.path.abspath(self._launch_args.get("cwd") or os.getcwd())
        return sandbox_command(cwd, self._private, self.course_root) + cmd


def sandbox_command(cwd, private, course_root=""):
    """The bwrap prefix that confines a kernel to ``cwd`` (read-write) and ``private``."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    home = os.path.expanduser("~")
    # Not --unshare-pid: ipykernel exits when its parent process is pid 1.
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try", "--unshare-user-try",
           "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if home not in ("/", ""):
        cmd += ["--tmpfs", home]  # the instructor's files: keys, other courses
    for path in sorted({sys.prefix, sys.base_prefix, package_root}):  # Python and the course package
        cmd += ["--ro-bind", path, path]
    if course_root:
        for hidden in ("solutions", GRADING_DIR):
            cmd += ["--tmpfs", os.path.join(course_root, hidden)]
    return cmd + ["--bind", private, private, "--bind", cwd, cwd, "--chdir", cwd, "--setenv", "HOME", home, "--"]


@functools.lru_cache(maxsize=1)
def sandbox_available():
    """True when bwrap can start a confined process on this machine."""
    if not shutil.which("bwrap"):
        return False
    probe = subprocess.run(sandbox_command(tempfile.gettempdir(), tempfile.gettempdir()) + ["true"],
                           capture_output=True)
    return probe.returncode == 0


class ResilientExecute(Execute):
    """nbgrader's Execute, but one bad cell cannot lose the whole submission.

    nbgrader interrupts a cell that runs past the timeout; a loop that swallows
    KeyboardInterrupt (``except:``/``except BaseException``) ignores that and the
    whole autograde of the student fails, as does a cell that kills the kernel
    (``os._exit``, a segfault, memory). Here such a cell gets an error output that
    says what happened, the kernel is restarted, every earlier cell except the
    broken ones is replayed silently, and grading continues with the next cell:
    the student loses the points of what the broken cell broke, nothing more.
    """

    # A timeout raises CellTimeoutError at once; we restart instead of interrupting.
    interrupt_on_timeout = Bool(False, help="Interrupt (instead of restart) on timeout.").tag(config=True)
    sandbox = Bool(False, help="Run kernels in bubblewrap (SandboxedKernelManager).").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.sandbox:
            self.kernel_manager_class = SandboxedKernelManager

    def preprocess(self, nb, resources=None, km=None):
        self._broken_cells = set()
        return super().preprocess(nb, resources, km)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (CellTimeoutError, DeadKernelError, asyncio.TimeoutError) as exc:
            self._broken_cells.add(cell_index)
            cell.outputs.append(self._error_output(exc))
            await self._restart_and_replay(cell_index)
            return cell

    # nbclient binds execute_cell to its own coroutine: rebind it to ours.
    execute_cell = run_sync(async_execute_cell)

    def _error_output(self, exc):
        if isinstance(exc, DeadKernelError):
            ename, text = "KernelDied", ("the Python kernel crashed while running this cell "
                                         "(os._exit, a segfault or running out of memory).")
        else:
            ename, text = "CellTimeoutError", (f"this cell ran for more than {self.timeout} s and was stopped "
                                               "(an infinite loop, or a loop that catches KeyboardInterrupt).")
        message = f"{text} The kernel was restarted and grading went on with the next cell."
        return NotebookNode(output_type="error", ename=ename, evalue=message,
                            traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])

    async def _restart(self):
        """Kill and restart the kernel; a new client, so no stale message is read."""
        await self.km.restart_kernel(now=True)
        self.kc.stop_channels()
        self.kc = self.km.client()
        await ensure_async(self.kc.start_channels())
        await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))
        self.kc.allow_stdin = False

    async def _restart_and_replay(self, upto):
        await self._restart()
        for index, cell in enumerate(self.nb.cells[:upto]):
            if cell.cell_type == "code" and index not in self._broken_cells:
                try:
                    await super().async_execute_cell(copy.deepcopy(cell), index, store_history=False)
                except (CellTimeoutError, DeadKernelError, asyncio.TimeoutError):
                    self._broken_cells.add(index)
                    await self._restart()


def configure(c, root, timeout=DEFAULT_TIMEOUT, sandbox="auto"):
    """Apply the course's nbgrader settings to the traitlets config ``c``.

    sandbox: run students' kernels in bubblewrap: True, False, or "auto" (when
    ``bwrap`` works on this machine).
    """
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                        GetGrades, IgnorePattern, LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, ClearMetadataPreprocessor

    # nbgrader runs `alembic` to create a gradebook: find it beside this Python
    # even when the virtual environment is not activated.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    grading = os.path.join(root, GRADING_DIR)
    os.makedirs(grading, exist_ok=True)  # sqlite cannot create the folder of its file
    c.CourseDirectory.root = root
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    c.CourseDirectory.submitted_directory = os.path.join(GRADING_DIR, "submitted")
    c.CourseDirectory.autograded_directory = os.path.join(GRADING_DIR, "autograded")
    c.CourseDirectory.feedback_directory = os.path.join(GRADING_DIR, "feedback")
    c.CourseDirectory.db_url = f"sqlite:///{os.path.join(grading, 'gradebook.db')}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".DS_Store"]
    # Students' notebooks run with our resilient executor, a per-cell timeout, no
    # history file (parallel kernels would share one) and short tracebacks.
    c.Execute.timeout = timeout
    c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal"]
    c.ResilientExecute.timeout = timeout
    c.ResilientExecute.extra_arguments = c.Execute.extra_arguments
    c.ResilientExecute.sandbox = sandbox_available() if sandbox == "auto" else bool(sandbox)
    c.SandboxedKernelManager.course_root = root
    from .verdicts import TrustedVerdicts
    # TrustedVerdicts rewrites every test cell's outputs from the grader's own judgement of
    # the results the kernel recorded (issue 6): it must come after execution and before
    # SaveAutoGrades.
    c.Autograde.autograde_preprocessors = [
        ResilientExecute, IgnorePattern, ClearMetadataPreprocessor, TrustedVerdicts, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    # A test cell the student deleted is put back (and run) instead of waiting for a
    # manual grade. The note is a comment, so that the restored code cell still runs.
    c.OverwriteCells.add_missing_cells = True
    c.OverwriteCells.missing_cell_notification = (
        "# This cell was missing from your submission: the autograder put it back.\n")
    # Feedback must never show hidden tests (nbgrader's default does).
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    # `nbgrader export` writes the same CSV as `python -m autograder export`.
    c.ExportApp.plugin_class = "autograder.pipeline.CourseCsvExport"
    # The released notebook is rendered in the book: keep it free of outputs.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return c


def make_config(root, timeout=DEFAULT_TIMEOUT, sandbox="auto"):
    from traitlets.config import Config
    return configure(Config(), os.path.abspath(root), timeout, sandbox)
