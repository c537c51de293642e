"""``python -m autograder``: the instructor's commands.

    python -m autograder release activations        # solutions/ -> exercises/
    python -m autograder check-release              # exercises/ equals a fresh release?
    python -m autograder collect activations DIR    # DIR/<student>.ipynb -> grading/submitted/
    python -m autograder grade activations          # autograde all, progress bar, table
                                                    # (a fresh clone: records the assignment first)
    python -m autograder grade activations --scheduler tcp://HOST:8786   # on a Dask cluster's workers
    python -m autograder report activations         # one HTML page: histogram, failing tests, mistakes
    python -m autograder feedback activations       # HTML feedback without hidden tests
    python -m autograder export grades.csv          # one row per student and assignment
    python -m autograder export canvas.csv --format canvas   # LMS gradebook layouts: canvas, moodle, generic
    python -m autograder stats activations          # which tests fail most
    python -m autograder demo                       # all of it on a synthetic class
    python -m autograder publish DIR                # the students' repository (no solutions) in DIR

Run from the course root (the repository root), or pass --course-dir.
"""
import argparse
import pathlib
import sys
import tempfile
import time

from . import course as settings
from . import pipeline


def _course(args):
    return pipeline.Course(args.course_dir, timeout=getattr(args, "timeout", settings.DEFAULT_TIMEOUT),
                           sandbox=getattr(args, "sandbox", "auto"))


def cmd_release(args):
    for assignment in args.assignments or settings.ASSIGNMENTS:
        print(f"released {pipeline.release(_course(args), assignment)}")


def cmd_check_release(args):
    stale = [d for a in args.assignments or settings.ASSIGNMENTS for d in pipeline.check_release(_course(args), a)]
    for line in stale:
        print(f"out of date: {line}")
    if stale:
        print("Run `python -m autograder release` and commit exercises/.")
        return 1
    print("exercises/ equals a fresh release of solutions/.")
    return 0


def cmd_collect(args):
    notes = []
    students = pipeline.collect(_course(args), args.assignment, args.source, notes)
    for line in notes:  # which notebook was taken, which files (links, scratch copies) were not
        print(f"note: {line}")
    print(f"collected {len(students)} submissions into grading/submitted/: {', '.join(students)}")


def cmd_grade(args):
    course = _course(args)
    sandboxed = course.config.ResilientExecute.sandbox
    print(f"kernels: {'sandboxed (bubblewrap: read-only, no network)' if sandboxed else 'NOT sandboxed'}, "
          f"timeout {course.timeout} s per cell")
    scheduler = getattr(args, "scheduler", None) or pipeline.configured_scheduler()
    print(f"grading on {'the Dask cluster at ' + scheduler if scheduler else f'{args.jobs} local worker process(es)'}"
          f"{'' if getattr(args, 'force', True) else '; unchanged submissions keep their grades (--force: regrade all)'}")
    start = time.perf_counter()
    results = pipeline.grade(course, args.assignment, args.student or None, jobs=args.jobs, scheduler=scheduler,
                             only_changed=not getattr(args, "force", True))
    elapsed = time.perf_counter() - start
    print(pipeline.table(results))
    regraded = sum(r.regraded for r in results)
    print(f"\n{regraded} of {len(results)} submissions graded in {elapsed:.1f} s "
          f"({elapsed / max(1, regraded):.1f} s each)")
    if args.feedback:
        folders = pipeline.feedback(course, args.assignment, results)
        print(f"feedback written to {course.path(settings.GRADING_DIR, 'feedback')} ({len(folders)} students)")
    return results


def cmd_feedback(args):
    course = _course(args)
    folders = pipeline.feedback(course, args.assignment)
    print(f"feedback for {len(folders)} students in {course.path(settings.GRADING_DIR, 'feedback')}")


def cmd_report(args):
    from . import report
    print(f"report written to {report.write(_course(args), args.assignment, args.output)}")


def cmd_export(args):
    course = _course(args)
    output = args.output or course.path(settings.GRADING_DIR, "grades.csv")
    if getattr(args, "format", "long") != "long":
        from . import exports
        print(f"grades ({args.format} layout) written to {exports.write(course, output, args.format)}")
        return
    print(f"grades written to {pipeline.export(course, output)}")


def cmd_stats(args):
    cells, mistakes = pipeline.stats(_course(args), args.assignment)
    print("Test cells failed most often:")
    for name, count, total in cells:
        print(f"  {name:<32} {count:>3}/{total}  {'#' * round(20 * count / max(1, total))}")
    print("Likely mistakes named in the feedback (by id):")
    titles = _mistake_titles(args.assignment)
    width = max([32] + [len(name) for name, _, _ in mistakes])
    for name, count, total in mistakes:
        print(f"  {name:<{width}} {count:>3}/{total}  {titles.get(name, '')}")
    if getattr(args, "plot", None) and cells:
        print(f"chart: {pipeline.plot_stats(cells, args.plot, f'{args.assignment}: failing tests')}")


def _mistake_titles(assignment):
    """{mistake id: title} of an assignment's checks (empty when it has no checks module)."""
    from . import checking
    try:
        return {i: m.title for i, m in checking.registry(checking.chapter_checks(assignment)).items()}
    except ImportError:
        return {}


def cmd_demo(args):
    from . import demo
    root = pathlib.Path(args.course_dir_demo or tempfile.mkdtemp(prefix="course-demo-"))
    print(f"Creating a synthetic class in {root} ...")
    course = demo.make_class(root, args.assignment)
    args.course_dir, args.student, args.feedback = root, None, True
    results = cmd_grade(args)
    export = pipeline.export(course, root / "grades.csv")
    print(f"grades exported to {export}")
    args.course_dir, args.plot = root, root / "failing-tests.png"
    cmd_stats(args)
    return 0 if results else 1


def cmd_publish(args):
    from . import publish
    written = publish.publish(args.course_dir, args.output)
    print(f"published {len(written)} files (book, exercises/, the student package; no solutions) to {args.output}")


def cmd_book(args):
    from . import book
    return book.main(args.course_dir, args.path_output, args.jobs)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course-dir", default=".", type=pathlib.Path,
                        help="the course root: solutions/, exercises/, grading/ (default: current folder)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help):
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("release", cmd_release, "Regenerate exercises/<assignment> from solutions/ (nbgrader generate_assignment).")
    p.add_argument("assignments", nargs="*", help=f"assignments (default: all: {', '.join(settings.ASSIGNMENTS)})")
    p = add("check-release", cmd_check_release, "Exit 1 if exercises/ differs from a fresh release of solutions/.")
    p.add_argument("assignments", nargs="*", help="assignments (default: all)")
    p = add("collect", cmd_collect, "Copy DIR/<student>.ipynb or DIR/<student>/*.ipynb into grading/submitted/ "
                                    "(the notebook under the released name when there are several; links skipped).")
    p.add_argument("assignment", help="assignment to collect, e.g. activations")
    p.add_argument("source", type=pathlib.Path, help="folder of submissions")
    for name, func, help in [
        ("grade", cmd_grade, "Autograde every submission of an assignment; print a summary table."),
    ]:
        p = add(name, func, help)
        p.add_argument("assignment", help="assignment to grade, e.g. activations")
        p.add_argument("--student", action="append", help="grade only this student (repeatable)")
        p.add_argument("--timeout", type=int, default=settings.DEFAULT_TIMEOUT,
                       help="seconds a cell may run before it is stopped (default: %(default)s)")
        p.add_argument("--feedback", action="store_true", help="also write the HTML feedback")
        p.add_argument("--jobs", "-j", type=int, default=1,
                       help="local Dask worker processes: students graded at once (default: %(default)s)")
        p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                       help="grade on the workers of this Dask scheduler instead of local processes "
                            "(default: Dask's scheduler-address setting, DASK_SCHEDULER_ADDRESS, if set)")
        p.add_argument("--force", action="store_true",
                       help="regrade every submission (default: only those changed since their last grade)")
        p.add_argument("--no-sandbox", dest="sandbox", action="store_false", default="auto",
                       help="run kernels without bubblewrap (default: sandboxed when bwrap works here)")
    p = add("feedback", cmd_feedback, "Write HTML feedback (hidden tests removed) to grading/feedback/.")
    p.add_argument("assignment", help="assignment whose feedback to write")
    p = add("export", cmd_export, "Export all grades as CSV.")
    p.add_argument("output", nargs="?", type=pathlib.Path,
                   help="CSV path (default: grading/grades.csv in the course folder)")
    p.add_argument("--format", choices=["long", "generic", "canvas", "moodle"], default="long",
                   help="long: one row per student and assignment (default); generic, canvas, moodle: one row "
                        "per student, one column per assignment, in the layout the LMS imports "
                        "(autograder/exports.py)")
    p = add("report", cmd_report, "Write an HTML class report: score histogram, failing tests, diagnosed "
                                  "mistakes, badly calibrated tests, slowest and broken submissions.")
    p.add_argument("assignment", help="assignment to report on, e.g. activations")
    p.add_argument("--output", type=pathlib.Path, help="HTML path (default: grading/reports/<assignment>.html)")
    p = add("stats", cmd_stats, "Show which test cells fail most and the most frequent diagnosed mistakes.")
    p.add_argument("assignment", help="assignment to summarise, e.g. activations")
    p.add_argument("--plot", type=pathlib.Path, help="also save a bar chart of the failure rates (PNG)")
    p = add("demo", cmd_demo, "Grade a synthetic class (correct, wrong, broken, looping, malformed) in a temporary folder.")
    p.add_argument("--assignment", default="activations", help="assignment to demo (default: %(default)s)")
    p.add_argument("--timeout", type=int, default=10, help="per-cell timeout for the demo (default: %(default)s s)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="students graded at once (default: %(default)s)")
    p.add_argument("--no-sandbox", dest="sandbox", action="store_false", default="auto",
                   help="run kernels without bubblewrap")
    p.add_argument("--dir", dest="course_dir_demo", type=pathlib.Path,
                   help="course folder to create (default: a new temporary folder)")
    p = add("publish", cmd_publish, "Write the student-facing repository (book, exercises/, the student package, "
                                    "README) to DIR: no solutions/, mutants, model answers or hidden tests.")
    p.add_argument("output", type=pathlib.Path, help="new or empty folder outside the course (or a previous publish)")
    p = add("book", cmd_book, "Build the book strictly (-W -n, every page executed), --jobs pages at a time, "
                              "into _build/html (autograder/book.py).")
    p.add_argument("--path-output", type=pathlib.Path, help="write _build/ under this folder (default: the course root)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="pages read and executed at once (default: %(default)s)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
