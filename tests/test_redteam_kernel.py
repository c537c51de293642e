"""Red team, kernel side (issue 7): hostile submissions cannot hurt the grader or the class.

Every hostile student is built from the released activations notebook (the solution
filled in, plus hostile code) and graded in ONE batch, two at a time, together with a
correct and an empty (not started) control student, under a real nbgrader autograde
(autograder.pipeline.grade). Each case states its expected score; probes that record
what they could see print a ``VERDICT <case> <json>`` line that the tests read.

Around the batch: the course folder (except what grading writes), a canary file in the
instructor's home and this checkout are checked unchanged; the grading process is a
child subreaper, so that no process the students started (daemons included) can leave
its process tree unnoticed, and none may be left when grading ends.

Cases that attack the machine (signals, mounts, reading or writing outside the student's
folder) only run in the sandbox (bubblewrap): without it they would really do it. They are
skipped, with that reason, where bwrap does not work. Slow: marked ``slow``.
REDTEAM_NO_SANDBOX=1 runs the suite as on a machine without bubblewrap.
"""
import ctypes
import dataclasses
import importlib.util
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import uuid

import nbformat
import psutil
import pytest

from autograder import course as settings, demo, pipeline

pytestmark = pytest.mark.slow
ASSIGNMENT = "activations"
TIMEOUT = 10          # seconds per cell: the looping students cost one each
JOBS = 2
FULL = 26             # automatic points of the activations assignment (20 + the two capstones' 6)
CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
SANDBOX = settings.sandbox_available() and os.environ.get("REDTEAM_NO_SANDBOX") != "1"
MARKER = f"REDTEAM-{uuid.uuid4().hex[:12]}"   # written by every hostile write attempt
# Functions that few test cells call: breaking one costs exactly those cells (dead_unit_fraction's
# test, 1 point, and the dead-units capstone that calls it, 3 points).
LONE_FUNCTIONS = {"maxout_backward": ("test_maxout_backward",),
                  "dead_unit_fraction": ("test_dead_unit_fraction", "capstone_dead_units")}
LOST = {"maxout_backward": 1, "dead_unit_fraction": 4}


@dataclasses.dataclass
class Case:
    """A hostile student: code appended to a function's cell, or a last cell of its own."""

    name: str
    what: str                  # the attack, in words (the RESULTS.md table)
    expected: int              # automatic points expected out of FULL
    code: str                  # hostile code (str.format'ed with the paths below)
    function: str = "sigmoid_backward"  # appended to this function's cell; None: a last cell
    sandbox_only: bool = True  # attacks the machine: run only inside bubblewrap
    verdict: object = None     # expected VERDICT entries (dict), NOTHING, or None: no VERDICT line


KILL_BY_CMDLINE = '''
import os, signal
def _kill_the_grader():
    killed = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
        except OSError:
            continue
        if int(pid) != os.getpid() and (b"nbgrader" in cmdline or b"autograder" in cmdline):
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
            except OSError:
                pass
    return killed
print("VERDICT kill_by_cmdline", json.dumps({{"grader visible": any(p != 1 for p in _kill_the_grader())}}))
'''

SIGSTOP_EVERYTHING = '''
import os, signal
_others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
for _pid in [os.getppid()] + _others:
    try:
        os.kill(_pid, signal.SIGSTOP)
    except OSError:
        pass
print("VERDICT sigstop_everything", json.dumps({{"other processes visible": [p for p in _others if p != 1]}}))
'''

SIGNAL_EVERYTHING = '''
import os, signal
for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL):
    for _target in (os.getppid(), -1):
        try:
            os.kill(_target, _sig)
        except OSError:
            pass
'''

SLEEPERS = '''
import subprocess
_sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(100)]
'''

DAEMON = '''
import os, sys, time
def _daemon(kernel):
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    for fd in range(3):
        os.close(fd)
    end = time.time() + 120
    while time.time() < end:  # kill every other kernel it can see
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(pid) != kernel and b"ipykernel" in open(f"/proc/{{pid}}/cmdline", "rb").read():
                    os.kill(int(pid), 9)
            except OSError:
                pass
        time.sleep(0.2)
    os._exit(0)
_daemon(os.getpid())
'''

CPU_BURNERS = '''
import subprocess, sys
for _ in range(2):
    subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
'''

# The limit is on address space (RLIMIT_AS): untouched pages reach it as surely as touched ones, and
# fast. Touching 4 GiB (b"x" * n) took 2.8-4.8 s on this 2-core VM idle, and under the batch's load it
# once lost the race with the 10 s cell timeout (CI, 2026-11-27): the limit's message never came.
MEMORY_GROWTH = '''
def maxout_backward(dout, cache):
    hoard = []
    while True:
        hoard.append(np.empty(64 * 2**20, dtype=np.uint8))
'''

FORK_BOMB = '''
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import os, time\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        time.sleep(0.5)"])
time.sleep(4)
_count = sum(1 for p in os.listdir("/proc") if p.isdigit())
print("VERDICT fork_bomb", json.dumps({{"processes bounded": _count <= {process_limit} + 2, "processes": _count}}))
'''

OUTPUT_100MB = '''
_line = "x" * (2**20 - 1)
for _ in range(100):
    print(_line)
'''

DEEP_RECURSION = '''
def dead_unit_fraction(h, threshold=1e-8):
    import sys
    sys.setrecursionlimit(10**7)
    def down(n):
        return down(n + 1) + 1
    return down(0)
'''

PLAIN_LOOP = '''
def maxout_backward(dout, cache):
    while True:
        pass
'''

LOOPS_IN_THREADS = '''
import threading
def _spin():
    while True:
        pass
for _ in range(2):
    threading.Thread(target=_spin).start()  # not daemons: they would keep the kernel alive
'''

OS_EXIT = demo.CRASHES.format(name="dead_unit_fraction")
SWALLOWS_INTERRUPT = demo.LOOPS.format(name="dead_unit_fraction")

REMOUNT = '''
import ctypes, os, subprocess
def _try(cmd):
    try:
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False
_libc = ctypes.CDLL(None, use_errno=True)
print("VERDICT remount", json.dumps({{
    "remount rw": _try(["mount", "-o", "remount,rw", "/"]),
    "remount rw (syscall)": _libc.mount(b"none", b"/", None, 32 | 4096, None) == 0,  # MS_REMOUNT|MS_BIND
    "umount /tmp": _try(["umount", "/tmp"]) or _libc.umount2(b"/tmp", 2) == 0,
    "umount home": _libc.umount2(os.getcwd().encode(), 2) == 0,
    "new user namespace": _try(["unshare", "-r", "true"]),
}}))
'''

SNOOP = '''
import glob, os, sys
def _readable(path):
    try:
        with open(path, "rb") as f:
            return len(f.read(64)) > 0
    except OSError:
        return False
def _listable(path):
    try:
        return len(os.listdir(path)) > 0
    except OSError:
        return False
_python = {{sys.prefix, sys.base_prefix, "/usr", "/proc", "/dev", os.getcwd()}}  # allowed, or not files
_notebooks = []
for _folder, _subfolders, _files in os.walk("/"):  # glob('/**/*.ipynb') without the Python installation
    _subfolders[:] = [d for d in _subfolders if os.path.join(_folder, d) not in _python]
    _notebooks += [os.path.join(_folder, f) for f in _files if f.endswith(".ipynb")]
print("VERDICT snoop", json.dumps({{
    "course solutions": _readable("{root}/solutions/activations/activations.ipynb"),
    "checkout solutions": _readable("{checkout}/solutions/activations/activations.ipynb"),
    "checkout .git": _listable("{checkout}/.git/objects") or _readable("{checkout}/.git/HEAD"),
    "course root": _listable("{root}"),
    "classmate": _readable("{root}/grading/submitted/correct/activations/activations.ipynb"),
    "gradebook": _readable("{root}/grading/gradebook.db"),
    "instructor home canary": _readable("{canary}"),
    "grader variables": sorted(set(os.environ) & {{"{secret_var}", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST"}}),
    "autograde marker": os.environ.get("NN_COURSE_RECORD"),
    "other notebooks": _notebooks,
}}))
'''

WRITER = '''
import os
def _write(path):
    try:
        with open(path, "a") as f:
            f.write("{marker}")
        return True
    except OSError:
        return False
print("VERDICT writer", json.dumps({{
    "instructor home": _write("{home}/{marker}"),
    "home canary": _write("{canary}"),
    "course root": _write("{root}/{marker}"),
    "gradebook": _write("{root}/grading/gradebook.db"),
    "own submitted folder": _write("{root}/grading/submitted/writer/activations/activations.ipynb"),
    "classmate": _write("{root}/grading/submitted/correct/activations/activations.ipynb"),
    "checkout": _write("{checkout}/{marker}"),
    "checkout solutions": _write("{checkout}/solutions/activations/activations.ipynb"),
    "checkout tests": _write("{checkout}/tests/test_redteam_kernel.py"),
}}))
'''

NETWORK = '''
import socket
def _connects(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False
print("VERDICT network", json.dumps({{"127.0.0.1 listener": _connects("127.0.0.1", {port}),
                                      "outside": _connects("1.1.1.1", 53)}}))
'''

NOTHING = "every entry false or empty"  # a VERDICT that saw and did nothing

CASES = [
    Case("kill_by_cmdline", "SIGKILL every process whose command line has nbgrader/autograder",
         FULL, KILL_BY_CMDLINE, verdict={"grader visible": False}),
    Case("sigstop_everything", "SIGSTOP to os.getppid() and to every visible pid", FULL, SIGSTOP_EVERYTHING,
         verdict={"other processes visible": []}),
    Case("signal_everything", "SIGTERM/HUP/INT/KILL to the parent and to pid -1 (everything)", FULL,
         SIGNAL_EVERYTHING),
    Case("sleepers", "100 `sleep 60` processes", FULL, SLEEPERS),
    Case("daemon", "double-fork daemon that kills every other kernel for 2 minutes", FULL, DAEMON),
    Case("cpu_burners", "2 CPU burners started in a last cell (new sessions), left running", FULL,
         CPU_BURNERS, function=None),
    Case("fork_bomb", "a fork bomb (in a child process), last cell", FULL, FORK_BOMB, function=None,
         verdict={"processes bounded": True}),
    Case("remount", "mount -o remount,rw /, mount(2), umount /tmp and its home, unshare -r", FULL, REMOUNT,
         verdict=NOTHING),
    Case("snoop", "read solutions/ (course, checkout), .git, classmates, gradebook, home canary, "
         "os.environ, every *.ipynb on the file system", FULL, SNOOP, function=None,
         verdict={"course solutions": False, "checkout solutions": False, "checkout .git": False,
                  "course root": False, "classmate": False, "gradebook": False,
                  "instructor home canary": False, "grader variables": [], "autograde marker": "1",
                  "other notebooks": []}),
    Case("writer", "write to the home, the course root, the gradebook, submissions, this checkout", FULL,
         WRITER, verdict=NOTHING),
    Case("network", "connect to a listener on 127.0.0.1 (and to 1.1.1.1)", FULL, NETWORK, verdict=NOTHING),
    # Cases that harm only the student: they also run without bubblewrap.
    Case("memory_growth", "maxout_backward grows its memory past the limit", FULL - 1, MEMORY_GROWTH,
         function="maxout_backward", sandbox_only=False),
    Case("output_100mb", "a last cell prints 100 MB", FULL, OUTPUT_100MB, function=None, sandbox_only=False),
    Case("deep_recursion", "dead_unit_fraction recurses without end (recursion limit 10**7): times out",
         FULL - LOST["dead_unit_fraction"],
         DEEP_RECURSION, function="dead_unit_fraction", sandbox_only=False),
    Case("plain_loop", "maxout_backward loops forever", FULL - 1, PLAIN_LOOP, function="maxout_backward",
         sandbox_only=False),
    Case("swallows_interrupt", "dead_unit_fraction loops and swallows KeyboardInterrupt",
         FULL - LOST["dead_unit_fraction"],
         SWALLOWS_INTERRUPT, function="dead_unit_fraction", sandbox_only=False),
    Case("loops_in_threads", "2 non-daemon threads spinning forever from the first cell", FULL,
         LOOPS_IN_THREADS, sandbox_only=False),
    Case("os_exit", "dead_unit_fraction calls os._exit(1)", FULL - LOST["dead_unit_fraction"], OS_EXIT,
         function="dead_unit_fraction",
         sandbox_only=False),
]
# The process limit binds through a pids cgroup (a grader run as root) or RLIMIT_NPROC (an
# ordinary user); where neither can (root without cgroups), the fork bomb would fill the machine.
ROOT_GRADER = not settings.process_limit_enforced()
RUN = [c for c in CASES if (SANDBOX or not c.sandbox_only) and not (c.name == "fork_bomb" and ROOT_GRADER)]
CONTROLS = ("correct", "not_started")
REGRADED = CONTROLS + ("kill_by_cmdline", "daemon", "memory_growth", "os_exit", "snoop")


def case_ids():
    return [c.name for c in CASES]


# ---------------------------------------------------------------- building the class


def released_and_solution(course):
    name = f"{ASSIGNMENT}.ipynb"
    released = nbformat.read(str(course.path("exercises", ASSIGNMENT, name)), as_version=4)
    solution = nbformat.read(str(course.path("solutions", ASSIGNMENT, name)), as_version=4)
    return released, solution


def hostile_notebook(released, solution, case, paths):
    """The solution with the case's code appended to its function's cell (a new definition there
    replaces the solution's), or as a last cell of its own."""
    code = "import json\n" + case.code.format(**paths)
    nb = demo.fill_in(released, solution)
    if case.function is None:
        nb.cells.append(nbformat.v4.new_code_cell(code))
        return nb
    return demo.append_to_definition(nb, case.function, code)


def new_course(root):
    shutil.copytree(CHECKOUT / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT)
    course = pipeline.Course(root, timeout=TIMEOUT, sandbox=SANDBOX)
    pipeline.release(course, ASSIGNMENT)
    return course


def submit(course, student, nb):
    folder = course.submitted(student, ASSIGNMENT)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{ASSIGNMENT}.ipynb"))


# ---------------------------------------------------------------- what must not change


def digest(paths):
    """{path: sha256 of its content} (links and folders: a fixed word)."""
    return {str(p): hashlib.sha256(p.read_bytes() if p.is_file() and not p.is_symlink() else b"<not a file>")
            .hexdigest() for p in paths}


def course_files(course):
    """Everything in the course folder that grading does not write (submissions included)."""
    written = (course.path("grading", "autograded"), course.path("grading", "feedback"),
               course.path("grading", "intake"))  # the grader's repaired copies (autograder/intake.py)
    # and the grader's own databases: nbgrader's gradebook and the regrade digests (pipeline.DIGESTS)
    return [p for p in course.root.rglob("*")
            if not p.name.startswith(("gradebook.db", pipeline.DIGESTS)) and not any(p == w or w in p.parents for w in written)]


def checkout_files_with_marker():
    """Files of this checkout (tracked or new, top level) that a hostile write reached."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=CHECKOUT, capture_output=True).stdout.split(b"\0")
    paths = [CHECKOUT / p.decode() for p in tracked if p] + list(CHECKOUT.iterdir())
    return sorted(str(p) for p in paths if p.is_file() and MARKER.encode() in p.read_bytes())


def become_subreaper():
    """Orphans of this process's descendants (double-forked daemons) become our children."""
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_zombies():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def surviving_processes(before):
    """Our descendants that are still alive and did not exist before grading."""
    time.sleep(1)  # let killed sandboxes finish dying
    reap_zombies()
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            helper = "multiprocessing.resource_tracker" in " ".join(p.cmdline())  # the pool's, not a student's
            if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE and not helper:
                alive.append(f"{p.pid} {' '.join(p.cmdline())[:80]}")
        except psutil.NoSuchProcess:
            pass
    return alive


class Listener:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port, self.accepted, self._stop = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                self.sock.accept()[0].close()
                self.accepted += 1
            except OSError:
                pass

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()


# ---------------------------------------------------------------- the batch


@dataclasses.dataclass
class Batch:
    course: pipeline.Course
    results: dict
    regraded: dict
    alone: dict
    seconds: float
    survivors: list
    course_changed: list  # paths
    canary_changed: bool
    checkout_marked: list
    connections: int
    secret_var: str


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam-course")
    course = new_course(root)
    home = pathlib.Path(os.path.expanduser("~"))
    canary = home / f".redteam-canary-{MARKER}"
    canary.write_text("the instructor's own file\n")
    secret_var = f"REDTEAM_GRADER_SECRET_{uuid.uuid4().hex[:6].upper()}"
    os.environ[secret_var] = "the grader's own variable"   # inherited by the grading processes
    listener = Listener()
    paths = dict(root=course.root, checkout=CHECKOUT, home=home, canary=canary, marker=MARKER,
                 secret_var=secret_var, port=listener.port,
                 process_limit=settings.DEFAULT_PROCESS_LIMIT)
    released, solution = released_and_solution(course)
    submit(course, "correct", demo.fill_in(released, solution))
    submit(course, "not_started", released)
    for case in RUN:
        submit(course, case.name, hostile_notebook(released, solution, case, paths))

    before_files, before_canary = digest(course_files(course)), canary.read_bytes()
    become_subreaper()
    before_processes = {p.pid for p in psutil.Process().children(recursive=True)}
    start = time.monotonic()
    try:
        results = {r.student: r for r in pipeline.grade(course, ASSIGNMENT, progress=False, jobs=JOBS)}
        seconds = time.monotonic() - start
        survivors = surviving_processes(before_processes)
        regraded = {r.student: r for r in pipeline.grade(course, ASSIGNMENT, list(REGRADED), progress=False,
                                                         jobs=JOBS)}
        survivors += surviving_processes(before_processes)
    finally:
        listener.close()
        del os.environ[secret_var]
    after_files = digest(course_files(course))
    changed = sorted(p for p in set(before_files) | set(after_files) if before_files.get(p) != after_files.get(p))
    canary_changed = canary.read_bytes() != before_canary or any(home.glob(f"{MARKER}*"))
    canary.unlink()

    # The controls, graded alone in a course of their own.
    alone_course = new_course(tmp_path_factory.mktemp("redteam-alone"))
    submit(alone_course, "correct", demo.fill_in(released, solution))
    submit(alone_course, "not_started", released)
    alone = {r.student: r for r in pipeline.grade(alone_course, ASSIGNMENT, progress=False, jobs=JOBS)}
    found = Batch(course, results, regraded, alone, seconds, survivors, changed, canary_changed,
                  checkout_files_with_marker(), listener.accepted, secret_var)
    if os.environ.get("REDTEAM_TABLE"):
        pathlib.Path(os.environ["REDTEAM_TABLE"]).write_text(outcome_table(found))
    return found


def outcome_table(batch):
    """The measured outcome of every case, as a Markdown table (for benchmarks/RESULTS.md)."""
    lines = ["| student | attack | expected | scored | regraded | status | what it saw or did |",
             "|---|---|---:|---:|---:|---|---|"]
    cases = [Case(s, "control", FULL if s == "correct" else 0, "") for s in CONTROLS] + CASES
    for case in cases:
        if case.name not in batch.results:
            why = "process limit not enforceable here (root, no pids cgroup)" if case.name == "fork_bomb" else "needs bubblewrap"
            lines.append(f"| {case.name} | {case.what} | {case.expected} | skipped ({why}) | | | |")
            continue
        r, again = batch.results[case.name], batch.regraded.get(case.name)
        seen = json.dumps(verdict(batch.course, case.name)) if case.verdict else ""
        lines.append(f"| {case.name} | {case.what} | {case.expected} | {r.score:g} | "
                     f"{'' if again is None else f'{again.score:g}'} | {r.status} | {seen.replace('|', '/')} |")
    lines += ["", f"Batch of {len(batch.results)} students, {JOBS} at a time, {TIMEOUT} s per cell: "
              f"{batch.seconds:.0f} s; sandbox: {SANDBOX}. Processes left: {len(batch.survivors)}; "
              f"course folder changed: {batch.course_changed}; home canary changed: {batch.canary_changed}; "
              f"checkout files written: {len(batch.checkout_marked)}; connections to the 127.0.0.1 "
              f"listener: {batch.connections}."]
    return "\n".join(lines) + "\n"


def verdict(course, student):
    """The student's ``VERDICT <student> {json}`` line in its autograded notebook, as a dict."""
    nb = nbformat.read(str(course.autograded(student, ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith(f"VERDICT {student} "):
                    return json.loads(line.split(" ", 2)[2])
    raise AssertionError(f"{student}: no VERDICT line in the graded notebook")


def error_text(batch, student):
    (path,) = batch.course.autograded(student, ASSIGNMENT).glob("*.ipynb")
    nb = nbformat.read(str(path), as_version=4)
    return "\n".join(o.get("evalue", "") + "\n".join(o.get("traceback", []))
                     for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error")


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", case_ids())
def test_each_case_scores_what_it_should(batch, name):
    case = next(c for c in CASES if c.name == name)
    if case.name == "fork_bomb" and ROOT_GRADER:
        pytest.skip("the process limit cannot be enforced here (root without a pids cgroup): "
                    "the fork bomb would fill the machine")
    if case not in RUN:
        pytest.skip(f"{name} attacks the machine: it runs only in the bubblewrap sandbox, not available here")
    result = batch.results[name]
    assert not result.error, f"{name}: {result.error}"
    assert result.score == case.expected, (name, result.score, result.failed_cells)
    if case.expected < FULL:  # it loses exactly the test cell of the function it broke
        assert result.failed_cells == LONE_FUNCTIONS[case.function], result.failed_cells
    if case.verdict == NOTHING:
        seen = verdict(batch.course, name)
        assert not any(seen.values()), (name, seen)
    elif case.verdict:
        seen = verdict(batch.course, name)
        for key, expected in case.verdict.items():
            assert seen[key] == expected, (name, key, seen[key])


def test_controls_score_as_when_graded_alone(batch):
    for student in CONTROLS:
        together, alone = batch.results[student], batch.alone[student]
        assert not together.error and together.cells
        assert (together.score, together.cells) == (alone.score, alone.cells), student
    assert batch.results["correct"].score == FULL and batch.results["not_started"].score == 0


def test_regrading_gives_identical_scores(batch):
    for student, again in batch.regraded.items():
        first = batch.results[student]
        assert (again.error, again.score, again.cells) == (first.error, first.score, first.cells), student


def test_no_process_survives_grading(batch):
    assert batch.survivors == []


def test_nothing_outside_the_students_folders_changes(batch):
    assert batch.course_changed == [], "the course folder (solutions, exercises, submissions) changed"
    assert not batch.canary_changed, "the instructor's home was written"
    assert batch.checkout_marked == [], "a hostile write reached this checkout"


def test_the_local_listener_was_never_reached(batch):
    if not SANDBOX:
        pytest.skip("network isolation needs the bubblewrap sandbox, not available here")
    assert batch.connections == 0


def test_limits_are_explained_in_the_graded_notebook(batch):
    assert "4 GiB memory limit" in error_text(batch, "memory_growth")
    assert any(why in error_text(batch, "deep_recursion") for why in ("KernelDied", "CellTimeoutError", "RecursionError"))
    # The check's own per-call limit and the cell's timeout are both 10 s here: either one
    # may stop the loop first, and each says so.
    loop = error_text(batch, "plain_loop")
    assert "CellTimeoutError" in loop or "maxout_backward did not return within 10 s" in loop, loop
    (path,) = batch.course.autograded("output_100mb", ASSIGNMENT).glob("*.ipynb")
    assert path.stat().st_size < 5 * 2**20, "100 MB of output reached the graded notebook"
    assert "[output cut" in path.read_text()


def test_the_batch_stays_quick(batch):
    # 20 students, 2 at a time, 5 of which each cost a 10 s timeout or a kernel restart.
    assert batch.seconds < 240, f"the hostile batch took {batch.seconds:.0f} s"


def test_without_sandbox_the_kernel_still_gets_the_minimal_environment(tmp_path, monkeypatch):
    """The environment and the marker do not depend on bubblewrap (nor on this machine having it)."""
    monkeypatch.setenv("REDTEAM_GRADER_VARIABLE", "secret")
    course = new_course(tmp_path)
    course.sandbox = False
    released, solution = released_and_solution(course)
    probe = ('import os, json\nprint("VERDICT env", json.dumps({"grader": "REDTEAM_GRADER_VARIABLE" in os.environ, '
             '"marker": os.environ.get("NN_COURSE_RECORD")}))')
    submit(course, "env", demo.append_to_definition(demo.fill_in(released, solution), "sigmoid_forward", probe))
    (result,) = pipeline.grade(course, ASSIGNMENT, ["env"], progress=False)
    assert not result.error and result.score == FULL
    assert verdict(course, "env") == {"grader": False, "marker": "1"}


def run_in_kernel(code, tmp_path, **config):
    """Run ``code`` in one kernel started by ResilientExecute with ``config`` (traitlets); its outputs."""
    from traitlets.config import Config
    c = Config()
    for key, value in config.items():
        cls, name = key.split(".")
        setattr(c[cls], name, value)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    executor = settings.ResilientExecute(config=c, timeout=60)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return nb.cells[0].outputs


DIGITS = str(pathlib.Path(importlib.util.find_spec("sklearn").origin).parent / "datasets" / "data" / "digits.csv.gz")


@pytest.mark.skipif(not settings.sandbox_available(), reason="bubblewrap (bwrap) is not installed")
def test_hide_oracle_hides_torch_and_the_references(tmp_path):
    code = ('import importlib, json\n'
            'def importable(name):\n'
            '    try:\n'
            '        importlib.import_module(name)\n'
            '        return True\n'
            '    except ImportError:\n'
            '        return False\n'
            'names = ["torch", "sklearn", "autograder.activations.reference", "autograder.normalization.reference",\n'
            '         "numpy", "scipy", "autograder", "autograder.checking"]\n'
            'seen = {n: importable(n) for n in names}\n'
            f'seen["digits data"] = __import__("os").path.exists({DIGITS!r})\n'
            'print("VERDICT", json.dumps(seen))\n')
    outputs = run_in_kernel(code, tmp_path, **{"ResilientExecute.sandbox": True,
                                               "SandboxedKernelManager.hide_oracle": True})
    text = "".join(o.get("text", "") for o in outputs)
    assert "VERDICT" in text, outputs
    seen = json.loads(text.split("VERDICT ", 1)[1])
    assert seen == {"torch": False, "sklearn": False, "autograder.activations.reference": False,
                    "autograder.normalization.reference": False,
                    "numpy": True, "scipy": True, "autograder": True, "autograder.checking": True,
                    "digits data": True}, seen  # scikit-learn's code is hidden, its data is not


def test_the_working_copy_holds_only_regular_files(tmp_path):
    student = tmp_path / "student"
    (student / "data").mkdir(parents=True)
    (student / "notebook.ipynb").write_text("{}")
    (student / "data" / "x.csv").write_text("1,2")
    (student / "gradebook").symlink_to(tmp_path / "elsewhere.db")
    (student / "data" / "up").symlink_to(tmp_path)
    settings.copy_regular_files(str(student), str(tmp_path / "copy"))
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert copied == ["data", "data/x.csv", "notebook.ipynb"]
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))
