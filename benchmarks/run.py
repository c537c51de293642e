"""Measure grading and build times. Not a test: it reports numbers.

    python benchmarks/run.py                 # checks + autograde (about 4 minutes)
    python benchmarks/run.py --book          # also a full book build (about 3 more minutes)
    python benchmarks/run.py --baseline REV  # also today's pipeline at git revision REV, side by side

Reports, per assignment:
- each check call (public and hidden), in-process, median of 5 runs;
- the floor: autograding the correct submission with every test cell emptied (kernel
  start, imports, the student's code, nbgrader's own work), the same way as below;
- the demo class (twice over) graded with one local Dask worker and with two, side by side
  (wall time, steady rate, CPU seconds per notebook, cores busy, speed-up; benchmarks/scale.py's
  measure); ``--parallel-only`` runs only this;
- one correct notebook autograded alone, warm (median of repeated grades in one process),
  with this checkout's pipeline and, with --baseline, with the pipeline of an earlier
  revision (a git worktree of it, run the same way in the same run);
and with --book, the full `jupyter-book build --all` time.
"""
import argparse
import contextlib
import io
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import notebooks  # noqa: E402
from autograder import course as settings  # noqa: E402
from autograder import demo, pipeline  # noqa: E402


def time_checks(assignment, repeats=5):
    nb = notebooks.load(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    with contextlib.redirect_stdout(io.StringIO()):
        ns = notebooks.namespace(nb)
    rows = []
    for cell in nb.cells:
        if notebooks.is_test(cell):
            # a capstone cell has no hidden block: its one run is timed as "public", "hidden" is 0
            public, _, hidden = cell.source.partition("### BEGIN HIDDEN TESTS")
            hidden = hidden.split("### END HIDDEN TESTS")[0]
            times = {}
            for label, source in (("public", public), ("hidden", hidden)):
                runs = []
                for _ in range(repeats):
                    with contextlib.redirect_stdout(io.StringIO()):  # the ✓ lines
                        start = time.perf_counter()
                        exec(source, ns)
                        runs.append(time.perf_counter() - start)
                times[label] = statistics.median(runs)
            rows.append((notebooks.grade_id(cell), times["public"], times["hidden"]))
    return rows


def time_floor(assignment, repeats=3):
    """Autograde the correct submission of a copy of the assignment whose test cells
    do nothing: kernel start, imports and the student's code, through nbgrader. The median
    autograde time on the worker of ``repeats`` copies graded in one call, after a first one
    (the worker's first grade also imports torch and the references)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp, "src", assignment, f"{assignment}.ipynb")
        source.parent.mkdir(parents=True)
        nb = notebooks.load(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
        for cell in nb.cells:
            if notebooks.is_test(cell):
                cell.source = "pass"
        nbformat.write(nb, str(source))
        course = demo.make_class(pathlib.Path(tmp, "course"), assignment, solutions=pathlib.Path(tmp, "src"),
                                 broken=False)
        names = ["correct"] + [f"copy{i}" for i in range(repeats)]
        for name in names[1:]:
            shutil.copytree(course.submitted("correct", assignment), course.submitted(name, assignment))
        results = pipeline.grade(course, assignment, names, progress=False)
        return statistics.median(r.seconds for r in results[1:])


def time_grading(assignment, copies=2):
    """The demo class (without the looping and crashing students), ``copies`` times over, graded
    with one local worker and then with two, side by side in this run: see scale.measure."""
    import scale
    with tempfile.TemporaryDirectory() as tmp:
        course = demo.make_class(tmp, assignment, broken=False)
        for student in course.students(assignment):
            for i in range(1, copies):
                shutil.copytree(course.submitted(student, assignment), course.submitted(f"{student}_{i}", assignment))
        return {jobs: scale.measure(course, assignment, jobs) for jobs in (1, 2)}


def parallel_table(runs):
    """Sequential (1 worker) against parallel (2 workers): wall, steady rate, CPU, speed-up."""
    one, two = runs[1], runs[2]
    print("| workers | notebooks | wall (cluster start included) | steady: s per notebook | autograde on a worker, "
          "median | CPU-s per notebook | cores busy (CPU / wall) | load average at the end |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for jobs, m in runs.items():
        steady = m["steady_seconds_per_result"] or float("nan")
        cpu = m["cpu_coordinator"] + m["cpu_workers"] + m["cpu_scheduler"]
        print(f"| {jobs} | {m['n']} | {m['wall']:.1f} s | {steady:.2f} s | {m['autograde_median']:.2f} s | "
              f"{m['cpu_per_notebook']:.2f} | {cpu / m['wall']:.2f} | {m['load_average'][0]:.1f} |")
    wall = one["wall"] / two["wall"]
    steady = (one["steady_seconds_per_result"] or 0) / (two["steady_seconds_per_result"] or float("inf"))
    print(f"\nspeed-up with 2 workers: {wall:.2f}x on the wall time, {steady:.2f}x on the steady rate; "
          f"same scores: {[r.score for r in one['results']] == [r.score for r in two['results']]}\n")


ONE_NOTEBOOK = """
import json, pathlib, shutil, statistics, sys, tempfile, time
from autograder import demo, pipeline
assignment, repeats, copies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as tmp:
    course = demo.make_class(pathlib.Path(tmp), assignment, broken=False)
    runs = []
    for _ in range(repeats + 1):  # the first grade of a process also imports torch: reported apart
        start = time.perf_counter()
        (result,) = pipeline.grade(course, assignment, ["correct"], progress=False)
        runs.append(time.perf_counter() - start)
    names = [f"copy{i}" for i in range(copies)]
    for name in names:
        shutil.copytree(course.submitted("correct", assignment), course.submitted(name, assignment))
    start = time.perf_counter()
    results = pipeline.grade(course, assignment, names, progress=False)
    per_notebook = (time.perf_counter() - start) / copies
print(json.dumps({"first": runs[0], "median": statistics.median(runs[1:]), "min": min(runs[1:]),
                  "score": result.score, "max_score": result.max_score, "class": per_notebook,
                  "class_all_full": all(r.score == result.score for r in results)}))
"""


def time_one_notebook(assignment, package_root, repeats=7, copies=10):
    """Seconds to autograde one correct notebook with the package found at ``package_root``:
    alone (one grade call each), and within a class of ``copies`` correct notebooks graded in
    one call, one at a time."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", ONE_NOTEBOOK, assignment, str(repeats), str(copies)], cwd=tmp,
                             env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def worktree(revision):
    """A checkout of ``revision`` in a temporary folder (git worktree), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp, "baseline")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
                       check=True, capture_output=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def side_by_side(assignment, baseline):
    rows = [("this checkout", time_one_notebook(assignment, ROOT))]
    if baseline:
        with worktree(baseline) as path:
            if (path / "solutions" / assignment).is_dir():
                rows.append((f"baseline {baseline}", time_one_notebook(assignment, path)))
            else:
                print(f"({assignment} is not in baseline {baseline})\n")
    print("| pipeline | in a class of 10, one at a time: per notebook | alone, warm: median (min) "
          "| first grade of a process | score |")
    print("|---|---:|---:|---:|---:|")
    for label, t in rows:
        full = "" if t["class_all_full"] else " (not all full!)"
        print(f"| {label} | {t['class']:.2f} s{full} | {t['median']:.2f} s ({t['min']:.2f} s) | {t['first']:.2f} s | "
              f"{t['score']:g}/{t['max_score']:g} |")
    print()


def time_book():
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([str(pathlib.Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
                        "-W", "-n", "--keep-going", "--all", "--path-output", tmp],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--book", action="store_true", help="also time a full book build")
    parser.add_argument("--assignment", action="append", help="only these assignments")
    parser.add_argument("--parallel-only", action="store_true",
                        help="only the sequential-vs-parallel grading of the demo class (issue 13)")
    parser.add_argument("--baseline", metavar="REV",
                        help="also time one notebook with the pipeline at this git revision (e.g. 81b0925)")
    args = parser.parse_args()
    flags = (" --book" if args.book else "") + (" --parallel-only" if args.parallel_only else "")
    flags += "".join(f" --assignment {a}" for a in args.assignment or [])
    flags += f" --baseline {args.baseline}" if args.baseline else ""
    print(f"$ python benchmarks/run.py{flags}\n")
    print(f"kernels sandboxed: {settings.sandbox_available()}\n")
    for assignment in args.assignment or settings.ASSIGNMENTS:
        print(f"## {assignment}\n")
        if args.parallel_only:
            grading_and_parallel(assignment)
            continue
        side_by_side(assignment, args.baseline)
        print("| check cell | public (ms) | hidden (ms) |\n|---|---:|---:|")
        for name, public, hidden in time_checks(assignment):
            print(f"| {name} | {1000 * public:.1f} | {1000 * hidden:.1f} |")
        floor = time_floor(assignment)
        print(f"\nfloor (autograde on a worker with empty test cells: kernel, imports, solution code, nbgrader): "
              f"{floor:.2f} s\n")
        grading_and_parallel(assignment)
    if args.book:
        print(f"full book build (jupyter-book build . -W -n --keep-going --all): {time_book():.1f} s")


def grading_and_parallel(assignment):
    runs = time_grading(assignment)
    seconds = {r.student: r.seconds for r in runs[1]["results"]}
    print(f"autograde on the worker, one worker, per notebook over {len(seconds)} demo students: "
          f"mean {statistics.mean(seconds.values()):.2f} s, min {min(seconds.values()):.2f} s, "
          f"max {max(seconds.values()):.2f} s (the first includes the worker's imports)\n")
    parallel_table(runs)


if __name__ == "__main__":
    main()
