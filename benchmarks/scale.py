"""Grade a large synthetic class on this machine and report throughput, memory and sizes. Not a test.

    python benchmarks/scale.py                  # 1,000 submissions, 2 local workers
    python benchmarks/scale.py -n 200 -j 2      # fewer (what fits in a shared machine's time)

The class is built with the demo's machinery (autograder/demo.py) for one assignment, in this mix:
  45 % correct (the solution), 30 % mutants (the syllabus's mistakes, in turn), 10 % empty (the
  released notebook), 15 % broken: 5 % crashing the kernel, 7 % not a notebook (truncated JSON),
  3 % looping forever in one function (each costs the cell timeout, 10 s here, and a restart).
Each student gets a copy with a comment naming them, so no two submissions are byte-identical.

Reports: wall time of `pipeline.grade` (cluster start included) and submissions per minute, the
steady rate between the first and the last recorded result, the autograde time per notebook on
the workers, CPU seconds used (coordinator + workers, their kernels included), peak memory (the
coordinator, each worker), the gradebook's size and grading/'s size, and the
time of an incremental regrade after 5 students resubmit.
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import cluster, demo, pipeline  # noqa: E402

MIX = (("correct", 45), ("mutant", 30), ("empty", 10), ("crashes", 5), ("malformed", 7), ("loops", 3))


def make_class(root, assignment, n):
    """A course folder with ``n`` submissions in the MIX; returns (course, {student: kind})."""
    course = demo.make_class(root, assignment, broken=True)
    _, kinds = demo.submissions(course, assignment, broken=True)
    (name,) = [p.name for p in course.path("exercises", assignment).glob("*.ipynb")]
    mutants = [k for k in kinds if k not in ("correct", "not_started", "deleted_a_test", "edited_the_tests",
                                             "loops", "crashes", "malformed")]
    shutil.rmtree(course.path("grading", "submitted"))
    plan, used = {}, 0
    for kind, percent in MIX:
        count = round(n * percent / 100) if kind != MIX[-1][0] else n - used
        used += count
        for i in range(count):
            source = {"mutant": mutants[i % len(mutants)] if mutants else "correct", "empty": "not_started"}.get(kind, kind)
            plan[f"s{len(plan):05d}"] = (kind, source)
    import nbformat
    for student, (kind, source) in plan.items():
        nb = kinds[source]
        folder = course.submitted(student, assignment)
        folder.mkdir(parents=True)
        if isinstance(nb, str):
            text = nb
        else:
            copy = nbformat.from_dict(json.loads(nbformat.writes(nb)))
            copy.cells.insert(0, nbformat.v4.new_markdown_cell(f"Submitted by {student}"))
            text = nbformat.writes(copy)
        (folder / name).write_text(text)
    return course, {s: k for s, (k, _) in plan.items()}


class Probe:
    """Collects, from inside pipeline.grade, when each result was recorded and the cluster's CPU and
    memory just before it closes (worker processes' own and their reaped kernels')."""

    def __init__(self):
        self.recorded, self.workers, self.scheduler_cpu = [], {}, 0.0
        self._record, self._close = pipeline.Recorder.record, cluster.Cluster.close
        probe = self

        def record(recorder, outcome):
            out = probe._record(recorder, outcome)
            probe.recorded.append(time.perf_counter())
            return out

        def close(engine):
            try:
                probe.workers.update(engine.client.run(cluster.process_usage))
                probe.scheduler_cpu = engine.client.run_on_scheduler(cluster.process_usage)["cpu"]
            except Exception as exc:  # a dead worker: report what is left
                print(f"(usage not collected: {exc})", file=sys.stderr)
            return probe._close(engine)

        pipeline.Recorder.record, cluster.Cluster.close = record, close

    def restore(self):
        pipeline.Recorder.record, cluster.Cluster.close = self._record, self._close


def measure(course, assignment, jobs, students=None, only_changed=False):
    """Grade once and return the numbers (see the module docstring)."""
    probe = Probe()
    before = os.times()
    start = time.perf_counter()
    try:
        results = pipeline.grade(course, assignment, students, progress=False, jobs=jobs, only_changed=only_changed)
    finally:
        probe.restore()
    wall = time.perf_counter() - start
    after = os.times()
    coordinator_cpu = (after.user - before.user) + (after.system - before.system)
    graded = [r for r in results if r.regraded and r.seconds]
    steady = (probe.recorded[-1] - probe.recorded[0]) / (len(probe.recorded) - 1) if len(probe.recorded) > 2 else None
    workers_cpu = sum(u["cpu"] for u in probe.workers.values())
    return {"n": len(results), "graded_on_workers": len(graded), "wall": wall,
            "per_minute": 60 * len(results) / wall, "steady_seconds_per_result": steady,
            "autograde_median": statistics.median(r.seconds for r in graded) if graded else None,
            "autograde_mean": statistics.mean(r.seconds for r in graded) if graded else None,
            "cpu_coordinator": coordinator_cpu, "cpu_workers": workers_cpu, "cpu_scheduler": probe.scheduler_cpu,
            "cpu_per_notebook": (coordinator_cpu + workers_cpu + probe.scheduler_cpu) / max(1, len(graded)),
            "peak_rss_coordinator": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "peak_rss_workers": [u["peak_rss"] for u in probe.workers.values()],
            "load_average": os.getloadavg(), "results": results}


def folder_size(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file() and not p.is_symlink())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="submissions (default: %(default)s)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="local workers (default: %(default)s)")
    parser.add_argument("--assignment", default="activations")
    parser.add_argument("--timeout", type=int, default=10, help="cell timeout, s (default: %(default)s)")
    args = parser.parse_args()
    print(f"$ python benchmarks/scale.py -n {args.n} -j {args.jobs} --assignment {args.assignment}\n")
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        course, kinds = make_class(pathlib.Path(tmp), args.assignment, args.n)
        course.timeout = args.timeout
        counts = {k: sum(v == k for v in kinds.values()) for k, _ in MIX}
        print("class:", ", ".join(f"{k} {v}" for k, v in counts.items()))
        m = measure(course, args.assignment, args.jobs)
        gradebook = course.path("grading", "gradebook.db").stat().st_size
        scores = [r.score for r in m["results"]]
        print(f"graded {m['n']} submissions ({m['graded_on_workers']} on workers) in {m['wall']:.0f} s: "
              f"{m['per_minute']:.1f} submissions/minute (cluster start included)")
        if m["steady_seconds_per_result"]:
            print(f"steady rate between the first and the last result: {m['steady_seconds_per_result']:.2f} s per "
                  f"submission ({60 / m['steady_seconds_per_result']:.1f}/minute)")
        print(f"autograde on a worker: median {m['autograde_median']:.2f} s, mean {m['autograde_mean']:.2f} s")
        print(f"CPU: coordinator {m['cpu_coordinator']:.0f} s, workers (with their kernels) {m['cpu_workers']:.0f} s, "
              f"scheduler {m['cpu_scheduler']:.0f} s: {m['cpu_per_notebook']:.2f} CPU-s per graded notebook")
        # (A kernel's own peak is not reported: getrusage counts a child forked from the worker with
        # the worker's pages until it execs, so the "largest child" is the worker's size.)
        print(f"peak memory: coordinator {m['peak_rss_coordinator'] / 2**20:.0f} MiB, workers "
              f"{', '.join(f'{r / 2**20:.0f}' for r in m['peak_rss_workers'])} MiB")
        print(f"gradebook {gradebook / 2**20:.1f} MiB ({gradebook / m['n'] / 1024:.1f} KiB per submission); "
              f"grading/ {folder_size(course.path('grading')) / 2**20:.0f} MiB")
        print(f"mean score {statistics.mean(scores):.2f}; load average during the run "
              f"{', '.join(f'{x:.1f}' for x in m['load_average'])} (1, 5, 15 min; 2 cores)")
        # Five students resubmit (a correct notebook), then grade is run again incrementally.
        resubmit = sorted(s for s, k in kinds.items() if k == "empty")[:5]
        (name,) = [p.name for p in course.path("exercises", args.assignment).glob("*.ipynb")]
        correct = next(s for s, k in kinds.items() if k == "correct")
        for s in resubmit:
            shutil.copy(course.submitted(correct, args.assignment) / name, course.submitted(s, args.assignment) / name)
        again = measure(course, args.assignment, args.jobs, only_changed=True)
        print(f"incremental regrade after {len(resubmit)} resubmissions: {again['graded_on_workers']} graded, "
              f"{again['n'] - sum(r.regraded for r in again['results'])} kept, in {again['wall']:.0f} s")


if __name__ == "__main__":
    main()
