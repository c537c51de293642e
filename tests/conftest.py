import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # tests/notebooks.py

import notebooks  # noqa: E402
from notebooks import ROOT  # noqa: E402,F401
from autograder import course  # noqa: E402

ASSIGNMENTS = course.ASSIGNMENTS


def solution_path(assignment):
    return notebooks.ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def release_path(assignment):
    return notebooks.ROOT / "exercises" / assignment / f"{assignment}.ipynb"


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request):
    return request.param


class BuiltBook:
    """The book built once per pytest run (tests/test_book.py and tests/test_site.py share it)."""

    def __init__(self, html, returncode, output, command):
        self.html, self.returncode, self.output, self.command = html, returncode, output, command


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the book with the README's command into a temporary folder, once per session.

    COURSE_BOOK_HTML=<a _build/html folder> reuses a site built before (for working on the
    site tests); tests/test_book.py then skips, since nothing was built in this run.
    """
    import os
    import subprocess
    from autograder import book
    reuse = os.environ.get("COURSE_BOOK_HTML")
    if reuse:
        return BuiltBook(pathlib.Path(reuse), None, f"reused {reuse}", None)
    import resource
    import time
    out = tmp_path_factory.mktemp("book")
    command = [sys.executable, "-m", *book.COMMAND.split()[2:], "--path-output", str(out)]
    cpu, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nbook built in {time.perf_counter() - start:.0f} s, "  # shown by pytest -s
          f"{after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime:.0f} CPU s (kernels included)")
    return BuiltBook(out / "_build" / "html", run.returncode, run.stdout[-6000:] + run.stderr[-6000:], command)


# Grading tests share one local Dask cluster (two workers, as `grade -j 2`) for the whole session:
# every `pipeline.grade` call would otherwise start and close its own scheduler and workers (about
# 5-10 s each, and a worker's first student pays its imports). They reach it as an instructor reaches
# a standing cluster, through Dask's `scheduler-address` setting (pipeline.configured_scheduler).
# Not for the tests whose subject is the cluster itself (test_cluster.py: worker counts, killed
# workers) or what the grading processes inherit from the grader (test_redteam_kernel.py: its
# secret environment variable and its surviving-process census need a cluster started at that time).
SHARED_CLUSTER_MODULES = {"test_grading", "test_forgeries", "test_redteam_files", "test_report", "test_site"}


@pytest.fixture(scope="session")
def _shared_grading_cluster():
    from distributed import Client
    from autograder import cluster
    local = cluster.local_cluster(2)
    try:
        with Client(local) as client:
            client.wait_for_workers(2, timeout="120s")
        yield local.scheduler_address
    finally:
        local.close()


@pytest.fixture(scope="module", autouse=True)
def shared_grading_cluster(request):
    """In the modules above, `pipeline.grade` without a scheduler grades on the session's cluster
    (module scope and autouse: the modules' own module-scoped fixtures grade whole classes)."""
    if request.module.__name__.rsplit(".", 1)[-1] not in SHARED_CLUSTER_MODULES:
        yield None
        return
    import dask
    address = request.getfixturevalue("_shared_grading_cluster")
    with dask.config.set({"scheduler-address": address}):
        yield address
