"""The nbgrader configuration of the course, shared by ``nbgrader_config.py`` and the CLI.

Folder layout (relative to the course root, the repository root by default):

    solutions/<assignment>/            nbgrader source (the instructor's notebooks)
    exercises/<assignment>/            the released student notebooks (committed)
    grading/submitted/<student>/<assignment>/   collected submissions  (gitignored)
    grading/autograded/..., grading/feedback/..., grading/gradebook.db (gitignored)
"""
import asyncio
import atexit
import contextlib
import copy
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from .records import MIME

ASSIGNMENTS = ("activations", "preprocessing", "initialization", "normalization", "hyperparameters")
GRADING_DIR = "grading"
DEFAULT_TIMEOUT = 30  # seconds per cell


# Every kernel that grades a student (sandboxed or not) gets these limits; a kernel
# that breaks one gets an error in the cell that says which (ResilientExecute).
GiB, MiB = 2**30, 2**20
DEFAULT_MEMORY_LIMIT = 4 * GiB
DEFAULT_PROCESS_LIMIT = 128
DEFAULT_CPU_LIMIT = 600          # seconds of CPU per process of the kernel
DEFAULT_FILE_SIZE_LIMIT = 256 * MiB
DEFAULT_TMP_SIZE = 512 * MiB
DEFAULT_OUTPUT_LIMIT = 1 * MiB   # characters of output kept per cell
DEFAULT_RECORD_LIMIT = 16 * MiB  # characters of check records kept per cell
# Imported by every kernel as it starts (see configure): what the notebooks import anyway.
PRELOAD = ["exec(\"for m in ('numpy', 'scipy.special', 'autograder.checking'): __import__(m)\", {})"]
SANDBOX_UID = 65534              # "nobody": the kernel's user inside the sandbox
SANDBOX_HOME = "/home/student"   # the kernel's home and working directory inside the sandbox
# Site-packages entries of the references' libraries (torch, scikit-learn): hidden from the kernel.
ORACLE_PACKAGES = ("torch", "functorch", "torchgen", "sklearn")
KEEP_DATA_OF = ("sklearn",)  # hidden by their __init__.py only: their data files stay readable
# The files of /etc that Python, numpy and matplotlib read; nothing else of /etc is shown.
ETC_ALLOWED = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
               "nsswitch.conf", "mime.types", "fonts")

# Runs inside the sandbox just before the kernel: set the limits, then become the kernel.
_SET_LIMITS = ("import os, resource, sys\n"
               "for name, value in zip(sys.argv[1].split(','), map(int, sys.argv[2].split(','))):\n"
               "    hard = value + 5 if name == 'RLIMIT_CPU' else value  # SIGXCPU first, then SIGKILL\n"
               "    resource.setrlimit(getattr(resource, name), (value, hard))\n"
               "os.execv(sys.argv[3], sys.argv[3:])\n")


class CourseKernelManager(AsyncKernelManager):
    """The kernel of one student's autograde: a minimal environment and resource limits.

    The kernel's environment holds none of the grader's variables: only what Python
    needs, one thread per numerical library (jobs grade students in parallel) and
    ``NN_COURSE_RECORD=1``, which tells the course's checks that they are being
    autograded. Memory, CPU time and file size are limited per process of the kernel.
    """

    memory_limit = Integer(DEFAULT_MEMORY_LIMIT, help=(
        "Address space of each kernel process, in bytes (default 4 GiB). Past it, allocations "
        "fail with MemoryError, which the graded cell reports.")).tag(config=True)
    cpu_limit = Integer(DEFAULT_CPU_LIMIT, help=(
        "CPU seconds of each kernel process over its whole life (a backstop for work left "
        "running between cells; each cell also has Execute.timeout).")).tag(config=True)
    file_size_limit = Integer(DEFAULT_FILE_SIZE_LIMIT, help=(
        "Largest file a kernel may write, in bytes (writing more raises OSError: File too large)."
    )).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._private = tempfile.mkdtemp(prefix="course-kernel-")
        weakref.finalize(self, shutil.rmtree, self._private, True)
        # The kernel works in a private copy of the student's regular files: nothing it
        # writes lands where the grader reads or writes (grading/autograded/...).
        self.working_directory = os.path.join(self._private, "work")
        os.makedirs(self.working_directory)

    def adopt(self, folder):
        """Copy the regular files of ``folder`` (the student's) into the working directory:
        at the first start, or later for a kernel started ahead of time (a spare)."""
        copy_regular_files(os.path.abspath(folder), self.working_directory)

    def kernel_environment(self):
        """The kernel's whole environment (the grader's own variables are not passed on)."""
        home = os.path.join(self._private, "home")
        os.makedirs(home, exist_ok=True)
        return kernel_environment(home)

    def limits(self):
        """{resource.RLIMIT_* name: value} set on the kernel."""
        return {"RLIMIT_AS": self.memory_limit, "RLIMIT_CPU": self.cpu_limit,
                "RLIMIT_FSIZE": self.file_size_limit}

    async def _async_pre_start_kernel(self, **kw):
        kw["env"] = self.kernel_environment()  # also used by every restart (_launch_args)
        source = kw.get("cwd")
        if source and os.path.abspath(source) != self.working_directory:
            self.adopt(source)  # the first start; restarts keep the working directory as it is
        kw["cwd"] = self.working_directory
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):
        return limits_command(self.limits()) + super().format_kernel_cmd(extra_arguments)


def kernel_environment(home, tmp=None):
    """A kernel's environment: Python's paths, one thread per library, the autograde marker."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "PYTHONPATH": package_parent,  # the course package, even when it is not installed
        "HOME": home, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NN_COURSE_RECORD": "1",  # the checks record results for the grader's verdicts (issue 6)
    }
    if tmp:
        env["TMPDIR"] = tmp
    return env


def limits_command(limits):
    """The prefix that sets ``limits`` ({RLIMIT_* name: value}) and then runs the command."""
    return [sys.executable, "-I", "-c", _SET_LIMITS, ",".join(limits), ",".join(map(str, limits.values()))]


class SandboxedKernelManager(CourseKernelManager):
    """Start each student's kernel inside bubblewrap (``bwrap``).

    The kernel runs in its own PID namespace (it cannot see or signal the grader, and
    every process it starts dies with it), as an unprivileged user with every
    capability dropped (no mount, remount or unmount; no new user namespace), with no
    network (it talks to us over Unix sockets in a private folder) and a process limit.
    The file system it sees is an allow-list: the Python installation, the system
    libraries, a few files of /etc, the course package's code, a private /tmp, and a
    private working directory (also its home) holding copies of the student's regular
    files. It never sees the course root, the gradebook, other students or the
    grader's own folders, and nothing it writes is read back by the grader.
    """

    process_limit = Integer(DEFAULT_PROCESS_LIMIT, help=(
        "Processes and threads the kernel may run at once (a fork bomb stops there). Only "
        "in the sandbox: outside, the limit would count all the grader's processes. Enforced by "
        "a pids cgroup of the kernel's own where the grader may create one (as root), and by "
        "RLIMIT_NPROC, which binds a grader run as an ordinary user (Linux exempts root from "
        "it, and the sandbox's user maps to the grader's).")).tag(config=True)
    tmp_size = Integer(DEFAULT_TMP_SIZE, help="Size of the kernel's private /tmp (memory), in bytes.").tag(config=True)
    hide_oracle = Bool(True, help=(
        "Also hide torch and the course's reference implementations (autograder/*/reference.py) "
        "from the kernel. Needs checks that do not import torch in the kernel.")).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"  # Unix sockets: TCP would need the network we remove
        sockets = os.path.join(self._private, "sockets")
        os.makedirs(sockets)
        self.ip = os.path.join(sockets, "kernel")
        self.connection_file = os.path.join(self._private, "connection.json")
        self._cgroup = process_cgroup(self.process_limit)
        if self._cgroup:
            weakref.finalize(self, remove_cgroup, self._cgroup)

    def kernel_environment(self):
        return kernel_environment(SANDBOX_HOME, tmp="/tmp")

    def limits(self):
        return {**super().limits(), "RLIMIT_NPROC": self.process_limit}

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        cmd = sandbox_command(self.working_directory, self._private, self.tmp_size, self.hide_oracle) + cmd
        return join_cgroup_command(self._cgroup) + cmd if self._cgroup else cmd


PIDS_CGROUPS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")  # cgroup v1's pids controller, or v2's root


def process_cgroup(limit):
    """A new pids cgroup that lets at most ``limit`` processes live in it, or None where this
    grader may not create one (not root, no pids controller): then RLIMIT_NPROC alone applies."""
    for base in PIDS_CGROUPS:
        if not os.path.exists(os.path.join(base, "cgroup.procs")) or not os.access(base, os.W_OK):
            continue
        if base == "/sys/fs/cgroup" and "pids" not in _read(os.path.join(base, "cgroup.subtree_control")):
            continue
        try:
            path = tempfile.mkdtemp(prefix="nn-course-kernel-", dir=base)  # the kernel creates the files
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(limit))
            return path
        except OSError:
            remove_cgroup(path)
    return None


@functools.lru_cache(maxsize=1)
def process_limit_enforced():
    """True when a sandboxed kernel's process limit binds here: a pids cgroup can be made, or
    the grader is not root (RLIMIT_NPROC)."""
    probe = process_cgroup(1)
    if probe:
        remove_cgroup(probe)
    return bool(probe) or os.geteuid() != 0


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def join_cgroup_command(cgroup):
    """The prefix that moves the kernel's launcher into ``cgroup`` before anything starts,
    so that every process of the kernel counts against its limit."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup]


def remove_cgroup(cgroup):
    """Kill what is left in a kernel's cgroup and remove it."""
    for _ in range(50):
        pids = [int(p) for p in _read(os.path.join(cgroup, "cgroup.procs")).split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        os.rmdir(cgroup)


def copy_regular_files(source, target, budget=DEFAULT_FILE_SIZE_LIMIT):
    """Copy the regular files and folders of ``source`` into ``target``, never following a link.

    Links, devices and sockets are skipped; so is anything past ``budget`` bytes in all.
    """
    os.makedirs(target, exist_ok=True)
    try:
        entries = sorted(os.scandir(source), key=lambda e: e.name)
    except OSError:
        return budget
    for entry in entries:
        destination = os.path.join(target, entry.name)
        if entry.is_dir(follow_symlinks=False):
            budget = copy_regular_files(entry.path, destination, budget)
        elif entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size <= budget:
            budget -= entry.stat(follow_symlinks=False).st_size
            _copy_without_following(entry.path, destination)
    return budget


def _copy_without_following(source, destination):
    """Copy one file, refusing a source that became a link since it was listed."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(destination, "xb") as dst:
        shutil.copyfileobj(src, dst)


def sandbox_command(work, private, tmp_size=DEFAULT_TMP_SIZE, hide_oracle=False):
    """The bwrap prefix that confines a kernel (see SandboxedKernelManager).

    work: the folder bound read-write as the kernel's home and working directory;
    private: the kernel manager's folder (connection file read-only, sockets read-write).
    """
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user",
           "--disable-userns", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
           # In a PID namespace the kernel's parent is pid 1 (bwrap, which dies with the grader):
           # JPY_PARENT_PID=1 tells ipykernel not to take that for its parent's death.
           "--setenv", "JPY_PARENT_PID", "1",
           "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_size), "--tmpfs", "/tmp"]
    connection = os.path.join(private, "connection.json")
    sockets = os.path.join(private, "sockets")
    binds = (_system_binds() + _python_binds(hide_oracle, private) + _package_binds(hide_oracle, private)
             + ["--bind", sockets, sockets, "--ro-bind-try", connection, connection, "--bind", work, SANDBOX_HOME])
    # A folder bound from under /tmp (a checkout or virtual environment there, our private
    # folder) would have its parents made inside the kernel's writable /tmp: give each such
    # tree a tmpfs of its own, made read-only once the binds are in, so the kernel cannot write
    # beside them (it would only write into its private /tmp, but it would look like the host's).
    trees = sorted({os.path.join("/tmp", d.split("/")[2]) for d in binds if d.startswith("/tmp/")})
    cmd += [arg for tree in trees for arg in ("--tmpfs", tree)] + binds + ["--chdir", SANDBOX_HOME]
    cmd += [arg for tree in trees for arg in ("--remount-ro", tree)]
    return cmd + ["--remount-ro", "/", "--"]  # the folders bwrap made for its mounts: read-only too


def _system_binds():
    """/usr and the top-level links or folders into it (/bin, /lib...), a few files of /etc."""
    cmd = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in ETC_ALLOWED:
        cmd += ["--ro-bind-try", os.path.join("/etc", name), os.path.join("/etc", name)]
    return cmd


def _python_binds(hide_oracle, private):
    """The Python installation (and virtual environment), read-only; the references' libraries
    (torch, scikit-learn) hidden if asked."""
    cmd = []
    for prefix in sorted({sys.base_prefix, sys.prefix}):
        cmd += ["--ro-bind", os.path.realpath(prefix), prefix]
    if hide_oracle:
        package, module = _oracle_stubs(private)
        for site in _site_packages_with(ORACLE_PACKAGES):
            for name in ORACLE_PACKAGES:
                path = os.path.join(site, name)
                if name in KEEP_DATA_OF and os.path.isfile(os.path.join(path, "__init__.py")):
                    # Its code does not import (every submodule imports the package first),
                    # its data files stay readable (the digits: autograder/data.py).
                    cmd += ["--ro-bind", module, os.path.join(path, "__init__.py")]
                elif os.path.isdir(path):
                    cmd += ["--ro-bind", package, path]
    return cmd


def _site_packages_with(entries):
    import site
    folders = set(site.getsitepackages()) | {site.getusersitepackages()}
    return sorted(f for f in folders if any(os.path.exists(os.path.join(f, e)) for e in entries))


_HIDDEN = ('raise ImportError("{what} is not available while the autograder runs your notebook: '
           'solutions are written in numpy")\n')


def _oracle_stubs(private):
    """A package folder and a module file, in ``private``, that raise ImportError when imported:
    laid over torch and over the reference modules (one bind each, so the sandbox starts fast)."""
    package = os.path.join(private, "hidden", "package")
    module = os.path.join(private, "hidden", "module.py")
    if not os.path.exists(module):
        os.makedirs(package)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write(_HIDDEN.format(what="This package (the references' library: torch or scikit-learn)"))
        with open(module, "w") as f:
            f.write(_HIDDEN.format(what="This module (the course's reference implementations, or scikit-learn)"))
    return package, module


def _package_binds(hide_oracle, private):
    """The course package's code (autograder/), read-only; the reference modules (and their
    compiled copies in __pycache__) hidden if asked."""
    package = os.path.dirname(os.path.abspath(__file__))
    cmd = ["--ro-bind", package, package]
    if hide_oracle:
        _, module = _oracle_stubs(private)
        for folder, _, files in os.walk(package):
            cmd += [arg for name in files if _is_reference(name)
                    for arg in ("--ro-bind", module, os.path.join(folder, name))]
    return cmd


def _is_reference(name):
    return name == "reference.py" or (name.startswith("reference.") and name.endswith(".pyc"))


@functools.lru_cache(maxsize=1)
def sandbox_available():
    """True when bwrap can start a confined process on this machine."""
    if not shutil.which("bwrap"):
        return False
    with tempfile.TemporaryDirectory() as private:
        os.makedirs(os.path.join(private, "sockets"))
        probe = subprocess.run(sandbox_command(private, private) + [sys.executable, "-c", "pass"],
                               capture_output=True)
    return probe.returncode == 0


class _Spares:
    """Kernels started ahead of time, one per configuration: the next student's."""

    def __init__(self):
        self._kernels = {}
        atexit.register(self.shutdown)

    def take(self, key):
        """The spare for ``key`` if it is still alive (else None)."""
        km = self._kernels.pop(key, None)
        if km is not None and not run_sync(km.is_alive)():
            _stop(km)
            km = None
        return km

    def put(self, key, km):
        old = self._kernels.pop(key, None)
        if old is not None:
            _stop(old)
        self._kernels[key] = km

    def shutdown(self):
        """Stop every spare (the end of a grading run; and at exit)."""
        while self._kernels:
            _stop(self._kernels.popitem()[1])


def _stop(km):
    with contextlib.suppress(Exception):  # a kernel that is already gone
        run_sync(km.shutdown_kernel)(now=True)


SPARES = _Spares()


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
    spare_kernels = Bool(True, help=(
        "Start the next student's kernel while this student's notebook runs, so that each "
        "notebook does not wait for a kernel to start (about 0.7 s). The spare gets the "
        "student's files when it is used; spares are shut down at the end of grading.")).tag(config=True)
    output_limit = Integer(DEFAULT_OUTPUT_LIMIT, help=(
        "Characters of output kept per cell (1 MiB by default); the rest is dropped as it "
        "arrives, with a note, so that a cell printing gigabytes cannot exhaust the grader's "
        "memory. -1: no limit.")).tag(config=True)
    record_limit = Integer(DEFAULT_RECORD_LIMIT, help=(
        "Characters of the checks' records (the results the grader judges) kept per cell, "
        "counted apart from printed output (16 MiB by default; a correct notebook's largest "
        "record is about 120 kB).")).tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every kernel gets the course's minimal environment and limits; the sandbox adds bwrap.
        self.kernel_manager_class = SandboxedKernelManager if self.sandbox else CourseKernelManager

    def preprocess(self, nb, resources=None, km=None):
        self._broken_cells = set()
        if km is not None or not self.spare_kernels:
            return super().preprocess(nb, resources, km)
        folder = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        self.kernel_name = self.kernel_name or nb.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"
        km = self._kernel_for(folder)
        try:
            return super().preprocess(nb, resources, km)
        finally:  # nbclient leaves a kernel it was given running: stop it here
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.shutdown_kernel)(now=True)

    def _kernel_for(self, folder):
        """A started kernel holding a copy of ``folder``: the spare started during the previous
        student's notebook if there is one (its start is then already paid), and a new spare
        for the next student, which starts while this notebook runs."""
        key = self._spare_key()
        km = SPARES.take(key)
        if km is not None:
            km.adopt(folder)
        else:
            km = self._new_kernel_manager()
            run_sync(km.start_kernel)(extra_arguments=self.extra_arguments, cwd=folder)
        spare = self._new_kernel_manager()
        run_sync(spare.start_kernel)(extra_arguments=self.extra_arguments)
        SPARES.put(key, spare)
        return km

    def _new_kernel_manager(self):
        return self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config)

    def _spare_key(self):
        """What a spare kernel must share with the kernel it stands in for."""
        settings = {name: dict(self.config.get(name, {})) for name in
                    ("CourseKernelManager", "SandboxedKernelManager", "KernelManager")}
        return (self.kernel_manager_class, self.kernel_name, tuple(self.extra_arguments), repr(settings))

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self._output_kept, self._output_cut, self._records_kept = 0, set(), 0
        # ExplainLimits (after TrustedVerdicts, which rewrites test cells) words errors with these.
        self.resources.setdefault(LIMITS_KEY, kernel_limits(self.km))
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (CellTimeoutError, DeadKernelError, asyncio.TimeoutError) as exc:
            self._broken_cells.add(cell_index)
            cell.outputs.append(self._error_output(exc))
            await self._restart_and_replay(cell_index)
            return cell

    # nbclient binds execute_cell to its own coroutine: rebind it to ours.
    execute_cell = run_sync(async_execute_cell)

    def output(self, outs, msg, display_id, cell_index):
        """Keep a cell's outputs up to ``output_limit`` characters, errors always; the checks'
        records (what the grader judges) count against ``record_limit`` instead, so that a
        student's prints never crowd them out."""
        size = _output_size(msg)
        if MIME in msg["content"].get("data", {}):
            if self._records_kept + size > self.record_limit:
                return None  # the grader reports the check's results as missing
            self._records_kept += size
            return super().output(outs, msg, display_id, cell_index)
        if self.output_limit < 0 or msg["msg_type"] == "error" or self._output_kept + size <= self.output_limit:
            self._output_kept += size
            return super().output(outs, msg, display_id, cell_index)
        stream = msg["content"].get("name", "stdout")
        if stream not in self._output_cut:  # one note per stream; a cut stderr still counts as stderr
            self._output_cut.add(stream)
            outs.append(NotebookNode(output_type="stream", name=stream, text=(
                f"\n[output cut: this cell printed more than {self.output_limit:,} characters; "
                "the autograder kept only the first ones]\n")))
        return None

    def _error_output(self, exc):
        if isinstance(exc, DeadKernelError):
            ename, text = "KernelDied", f"the Python kernel {_why_the_kernel_died(self.km)} while running this cell."
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


def _output_size(msg):
    content = msg["content"]
    if "text" in content:
        return len(content["text"])
    return sum(len(str(value)) for value in content.get("data", {}).values())


def _limit(km, name, default):
    return getattr(km, name, default)


def _why_the_kernel_died(km):
    """How the kernel died, from its exit status (bwrap exits with 128 + the signal)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    status = process.poll() if process is not None else None
    memory = _limit(km, "memory_limit", DEFAULT_MEMORY_LIMIT) / GiB
    if status in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return f"used up its CPU time limit ({_limit(km, 'cpu_limit', DEFAULT_CPU_LIMIT)} s of CPU) and was stopped"
    if status in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return (f"was killed (it ran out of its {memory:g} GiB memory limit, "
                "or used up its CPU time limit)")
    return f"crashed (os._exit, a segfault, or running out of its {memory:g} GiB memory limit)"


# Errors that a kernel limit causes, and how to say so: (ename, words in the message, note).
_LIMIT_ERRORS = (
    ("MemoryError", "", "the kernel ran out of its {memory:g} GiB memory limit"),
    ("OSError", "File too large", "files written while grading are limited to {file_mib:g} MiB"),
    ("BlockingIOError", "Resource temporarily unavailable",
     "the kernel may run at most {processes} processes and threads"),
    ("RuntimeError", "can't start new thread", "the kernel may run at most {processes} processes and threads"),
)


LIMITS_KEY = "nn_course_kernel_limits"  # in nbconvert's resources: the limits of the kernel that ran


def kernel_limits(km):
    """The numbers the limit messages quote, from the kernel manager's settings."""
    return {"memory": _limit(km, "memory_limit", DEFAULT_MEMORY_LIMIT) / GiB,
            "file_mib": _limit(km, "file_size_limit", DEFAULT_FILE_SIZE_LIMIT) / MiB,
            "processes": _limit(km, "process_limit", DEFAULT_PROCESS_LIMIT)}


class ExplainLimits(NbGraderPreprocessor):
    """Say which kernel limit an error came from (memory, file size, processes), in the graded notebook.

    Runs after TrustedVerdicts, which rewrites the test cells' outputs, so that the
    note reaches the student's feedback.
    """

    def preprocess(self, nb, resources):
        words = resources.get(LIMITS_KEY, kernel_limits(None))
        for cell in nb.cells:
            explain_limit_errors(cell.get("outputs", []), words)
        return nb, resources


def explain_limit_errors(outputs, words):
    """Add to each error output that a kernel limit caused which limit it was, in place."""
    for out in outputs:
        if out.get("output_type") != "error":
            continue
        for ename, needle, note in _LIMIT_ERRORS:
            # The checks report an exception of the student's code in their own words: match those too.
            text = f"{out.get('ename', '')}: {out.get('evalue', '')}"
            if ename in text and needle in text:
                note = f" ({note.format(**words)})"
                out["evalue"] = out.get("evalue", "") + note
                out["traceback"] = list(out.get("traceback", [])) + [note.strip()]
                break


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
    # history file (parallel kernels would share one) and short tracebacks. The kernel
    # imports what every notebook imports while it starts (a spare kernel starts during the
    # previous student's notebook, so this costs nothing), in a namespace of its own: the
    # student's namespace stays empty.
    c.Execute.timeout = timeout
    c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal",
                                 f"--IPKernelApp.exec_lines={PRELOAD!r}"]
    c.ResilientExecute.timeout = timeout
    c.ResilientExecute.extra_arguments = c.Execute.extra_arguments
    c.ResilientExecute.sandbox = sandbox_available() if sandbox == "auto" else bool(sandbox)
    # While grading, the checks only record (autograder/checking.py): the kernel needs neither
    # torch nor the references, so it does not see them.
    c.SandboxedKernelManager.hide_oracle = True
    from .verdicts import TrustedVerdicts
    # TrustedVerdicts rewrites every test cell's outputs from the grader's own judgement of
    # the results the kernel recorded (issue 6): it must come after execution and before
    # SaveAutoGrades.
    c.Autograde.autograde_preprocessors = [
        ResilientExecute, IgnorePattern, ClearMetadataPreprocessor, TrustedVerdicts, ExplainLimits, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    # A test cell the student deleted is put back (and run) instead of waiting for a
    # manual grade. The note is a comment, so that the restored code cell still runs.
    c.OverwriteCells.add_missing_cells = True
    c.OverwriteCells.missing_cell_notification = (
        "# This cell was missing from your submission: the autograder put it back.\n")
    # Feedback must never show hidden tests (nbgrader's default does).
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    # ...and renders its maths with no network: MathJax inlined, not nbgrader's CDN copy.
    from .book import offline_feedback_maths
    offline_feedback_maths(c)
    # `nbgrader export` writes the same CSV as `python -m autograder export`.
    c.ExportApp.plugin_class = "autograder.pipeline.CourseCsvExport"
    # The released notebook is rendered in the book: keep it free of outputs.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # The released notebook names the repository and the book from _config.yml's repository.url
    # (solutions/ holds {{ repository_url }} and {{ book_url }}).
    from .links import configure as fill_links
    fill_links(c, root)
    return c


def make_config(root, timeout=DEFAULT_TIMEOUT, sandbox="auto"):
    from traitlets.config import Config
    return configure(Config(), os.path.abspath(root), timeout, sandbox)
