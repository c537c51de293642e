"""Measure grading and build times. Not a test: it reports numbers.

    python benchmarks/run.py                 # checks + autograde (about 4 minutes)
    python benchmarks/run.py --book          # also a full book build (about 3 more minutes)
    python benchmarks/run.py --baseline REV  # also today's pipeline at git revision REV, side by side

Reports, per assignment:
- each check call (public and hidden), in-process, median of 5 runs;
- the floor: autograding the correct submission with every test cell emptied (kernel
  start, imports, the student's code, nbgrader's own work), the same way as below;
- seconds per notebook to autograde the demo class with `pipeline.grade`;
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
            public, hidden = cell.source.split("### BEGIN HIDDEN TESTS")
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
    do nothing: kernel start, imports and the student's code, through nbgrader."""
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
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            pipeline.grade(course, assignment, ["correct"], progress=False)
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)


def time_grading(assignment):
    """Seconds per student graded one at a time, and the whole class with --jobs 2."""
    with tempfile.TemporaryDirectory() as tmp:
        course = demo.make_class(tmp, assignment, broken=False)
        per_student = {}
        for student in course.students(assignment):
            start = time.perf_counter()
            pipeline.grade(course, assignment, [student], progress=False)
            per_student[student] = time.perf_counter() - start
        start = time.perf_counter()
        pipeline.grade(course, assignment, progress=False, jobs=2)
        return per_student, time.perf_counter() - start


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
    parser.add_argument("--baseline", metavar="REV",
                        help="also time one notebook with the pipeline at this git revision (e.g. 81b0925)")
    args = parser.parse_args()
    flags = (" --book" if args.book else "") + (f" --baseline {args.baseline}" if args.baseline else "")
    print(f"$ python benchmarks/run.py{flags}\n")
    print(f"kernels sandboxed: {settings.sandbox_available()}\n")
    for assignment in args.assignment or settings.ASSIGNMENTS:
        print(f"## {assignment}\n")
        side_by_side(assignment, args.baseline)
        print("| check cell | public (ms) | hidden (ms) |\n|---|---:|---:|")
        for name, public, hidden in time_checks(assignment):
            print(f"| {name} | {1000 * public:.1f} | {1000 * hidden:.1f} |")
        floor = time_floor(assignment)
        grading, parallel = time_grading(assignment)
        mean = statistics.mean(grading.values())
        print(f"\nfloor (autograde with empty test cells: kernel, imports, solution code, nbgrader): {floor:.2f} s")
        print(f"autograde, seconds per notebook over {len(grading)} demo students: mean {mean:.2f} s, "
              f"min {min(grading.values()):.2f} s, max {max(grading.values()):.2f} s")
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(grading.items())))
        print(f"whole class with --jobs 2: {parallel:.1f} s ({parallel / len(grading):.2f} s per notebook)\n")
    if args.book:
        print(f"full book build (jupyter-book build . -W -n --keep-going --all): {time_book():.1f} s")


if __name__ == "__main__":
    main()
