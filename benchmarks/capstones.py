"""What each capstone adds to the autograding of one notebook. Not a test.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/capstones.py

(the grading kernel's thread settings, autograder/course.py). For every capstone cell of chapters
1-4, on the solution's functions: the kernel's run (the provided training with the student's
functions, recorded: median of 5), the grader's judgement of one record with the reference run
already done (what every further student costs), and the reference run itself (once per class,
cached; for the initialisation capstone, whose reference starts from the student's own weights,
once per student). torch is imported before timing (the grader imports it anyway).
"""
import contextlib
import io
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402,F401 (imported before timing, as in the grader)

import notebooks  # noqa: E402
from autograder import capstone, checking  # noqa: E402

CHAPTERS = ("activations", "preprocessing", "initialization", "normalization")


def seconds(call, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    print("| capstone | kernel run (s) | judge, reference cached (s) | reference run (s) |")
    print("|---|---|---|---|")
    for chapter in CHAPTERS:
        with contextlib.redirect_stdout(io.StringIO()):
            ns = notebooks.namespace(notebooks.load(ROOT / "solutions" / chapter / f"{chapter}.ipynb"))
        for name, check in checking.chapter_checks(chapter).items():
            if not isinstance(check, capstone.CapstoneCheck):
                continue
            functions = tuple(ns[f] for f in check.row.functions)
            record = check.run(functions, False)
            kernel = seconds(lambda: check.run(functions, False), repeat=5)
            capstone._REFERENCE_RUNS.clear()
            first = seconds(lambda: check.judge(record, False))
            cached = seconds(lambda: check.judge(record, False), repeat=3)
            reference = first - cached if check.row.law is None else cached
            assert check.judge(record, False).passed
            print(f"| {name} | {kernel:.2f} | {cached:.2f} | {reference:.2f} |")


if __name__ == "__main__":
    main()
