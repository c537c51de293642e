"""Where a notebook's grading time goes, in a class graded one at a time. Not a test.

    python benchmarks/breakdown.py activations 8              # 8 copies of the correct notebook
    python benchmarks/breakdown.py activations 8 --no-spare   # without kernels started ahead

Grades the demo class's correct notebook once (torch's import and the references: not
counted), then ``copies`` copies of it in one ``pipeline.grade`` call, and prints the seconds
per notebook and the median time of each instrumented step.
"""
import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbclient import NotebookClient  # noqa: E402
from nbgrader.apps import NbGraderAPI  # noqa: E402

from autograder import course, demo, pipeline, verdicts  # noqa: E402

STEPS = [  # (owner, attribute, label)
    (NbGraderAPI, "autograde", "nbgrader autograde (all of it)"),
    (course.ResilientExecute, "preprocess", "  executing the notebook"),
    (NotebookClient, "start_new_kernel_client", "    waiting for the kernel"),
    (verdicts.TrustedVerdicts, "preprocess", "  TrustedVerdicts"),
    (pipeline, "_prepare", "intake (grade's own)"),
    (pipeline, "_result", "reading the scores (grade's own)"),
]


def instrument(timings):
    for owner, name, label in STEPS:
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings.setdefault(_label, []).append(time.perf_counter() - start)

        setattr(owner, name, timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignment")
    parser.add_argument("copies", type=int)
    parser.add_argument("--no-spare", action="store_true", help="start each kernel when its notebook is graded")
    args = parser.parse_args()
    if args.no_spare:
        configure = course.configure

        def without_spares(c, *a, **k):
            configure(c, *a, **k)
            c.ResilientExecute.spare_kernels = False
            return c

        course.configure = without_spares
    timings = {}
    instrument(timings)
    with tempfile.TemporaryDirectory() as tmp:
        grading = demo.make_class(pathlib.Path(tmp), args.assignment, broken=False)
        names = [f"copy{i}" for i in range(args.copies)]
        for name in names:
            shutil.copytree(grading.submitted("correct", args.assignment), grading.submitted(name, args.assignment))
        pipeline.grade(grading, args.assignment, ["correct"], progress=False)
        timings.clear()
        start = time.perf_counter()
        results = pipeline.grade(grading, args.assignment, names, progress=False)
        seconds = time.perf_counter() - start
    print(f"$ python benchmarks/breakdown.py {args.assignment} {args.copies}{' --no-spare' if args.no_spare else ''}")
    print(f"{seconds / args.copies:.2f} s per notebook ({args.copies} notebooks, {seconds:.1f} s); "
          f"statuses: {sorted({r.status for r in results})}")
    for _, _, label in STEPS:
        if label in timings:
            print(f"  {label:<36} median {statistics.median(timings[label]):.3f} s")


if __name__ == "__main__":
    main()
