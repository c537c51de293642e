"""``python -m autograder report ASSIGNMENT``: one HTML page about a graded class, for instructors.

Everything comes from what grading left behind: the gradebook (scores per test cell), the
autograded notebooks (the mistakes the grader diagnosed, in each test cell's metadata
``nn_course.mistakes``, written by autograder/verdicts.py; the errors of broken cells), the
grading times (grading/graded.sqlite) and the submissions the intake could not read. The page
shows:

- a histogram of the scores;
- the share of graded students failing each test cell;
- the diagnosed mistakes by count, with their title and advice from the checks' tables;
- the tests that nobody fails and the tests that everybody fails (badly calibrated: too easy, or
  broken or misleading), counted over the submissions that were graded;
- the slowest submissions and the broken ones (not gradable, a crashed kernel, a cell stopped
  at the timeout, flags);
plots are PNG images inside the page (base64), so the page is one file to mail or upload.
"""
import base64
import dataclasses
import datetime
import html
import io
import pathlib
from collections import Counter

import nbformat

from . import course as settings
from . import intake, pipeline

BROKEN_ERRORS = {"KernelDied": "the kernel crashed", "CellTimeoutError": "a cell ran past the timeout"}
SLOWEST = 10


@dataclasses.dataclass
class Student:
    """What the report knows about one student's submission."""

    id: str
    score: float = 0.0
    max_score: float = 0.0
    graded: bool = False
    failed: tuple = ()
    mistakes: tuple = ()
    broken: tuple = ()       # why the submission is listed as broken (plain words)
    seconds: float = 0.0     # the autograde's time on its worker (0: unknown)


@dataclasses.dataclass
class ClassReport:
    assignment: str
    max_score: float
    tests: list              # the assignment's test cells, in notebook order
    students: list
    titles: dict             # mistake id -> (title, advice)

    @property
    def graded(self):
        return [s for s in self.students if s.graded]

    def failing_share(self):
        """[(test, share of graded students failing it, count)] in notebook order."""
        counts = Counter(t for s in self.graded for t in s.failed)
        n = max(1, len(self.graded))
        return [(t, counts[t] / n, counts[t]) for t in self.tests]

    def mistakes(self):
        """[(mistake id, number of students, title, advice)], most frequent first."""
        counts = Counter(m for s in self.graded for m in s.mistakes)
        return [(m, c, *self.titles.get(m, ("(no title: not in this assignment's checks)", "")))
                for m, c in counts.most_common()]

    def never_failed(self):
        return [t for t, share, _ in self.failing_share() if share == 0] if self.graded else []

    def always_failed(self):
        return [t for t, share, _ in self.failing_share() if share == 1] if self.graded else []

    def slowest(self, n=SLOWEST):
        return sorted((s for s in self.students if s.seconds), key=lambda s: -s.seconds)[:n]

    def broken(self):
        return [s for s in self.students if s.broken]


def collect(course, assignment):
    """Read the class's results into a ClassReport."""
    from nbgrader.api import MissingEntry
    students, tests, max_score = {}, [], 0.0
    times = pipeline.grading_times(course, assignment)
    with pipeline._gradebook(course) as gb:
        a = gb.find_assignment(assignment)
        max_score = a.max_score
        for nb in a.notebooks:
            order = {c.name: i for i, c in enumerate(nb.source_cells)}
            tests += sorted((c.name for c in nb.grade_cells if c.cell_type == "code"),
                            key=lambda name: order.get(name, 0))
        ids = sorted(set(course.students(assignment)) | {s.id for s in gb.students})
        for sid in ids:
            student = Student(sid, max_score=max_score, seconds=(times.get(sid) or (0.0, ""))[0] or 0.0)
            try:
                sub = gb.find_submission(assignment, sid)
            except MissingEntry:
                sub = None
            if sub is not None:
                grades = [g for nb in sub.notebooks for g in nb.grades if g.cell_type == "code"]
                student.score, student.graded = sub.score, True
                student.failed = tuple(g.name for g in grades if (g.auto_score or 0) < g.max_score)
            students[sid] = student
    notebook, source_cells = pipeline._assignment_in_gradebook(course, assignment)
    for student in students.values():
        _read_autograded(course, assignment, student)
        if not student.graded and course.submitted(student.id, assignment).is_dir():
            read = intake.read_submission(course.submitted(student.id, assignment), notebook, source_cells)
            student.broken += (f"not graded: {read.error}" if read.error else "not graded yet",)
    return ClassReport(assignment, max_score, tests, [students[k] for k in sorted(students)],
                       _mistake_titles(assignment))


def _read_autograded(course, assignment, student):
    """The diagnosed mistakes and the broken cells of the student's autograded notebook."""
    for path in sorted(course.autograded(student.id, assignment).glob("*.ipynb")):
        try:
            nb = nbformat.reads(intake.read_regular_file(path).decode("utf-8"), as_version=4)
        except (OSError, ValueError):
            student.broken += ("its autograded notebook cannot be read",)
            continue
        mistakes, broken = [], Counter()
        for cell in nb.cells:
            named = cell.get("metadata", {}).get("nn_course", {}).get("mistakes", [])
            mistakes += [str(m) for m in named if isinstance(m, str)]
            errors = " ".join(f"{o.get('ename', '')} {o.get('evalue', '')} {' '.join(o.get('traceback', []))}"
                              for o in cell.get("outputs", []) if o.get("output_type") == "error")
            for name, why in BROKEN_ERRORS.items():  # the kernel's error, or the verdict quoting it
                broken[why] += name in errors
        student.mistakes = tuple(dict.fromkeys(mistakes))
        student.broken += tuple(f"{why} ({n} cell{'s' * (n > 1)})" for why, n in broken.items() if n)
        flags = (nb.metadata.get("nn_course") or {}).get("flags") or []
        student.broken += tuple(f"flag: {f}" for f in flags if isinstance(f, str))


def _mistake_titles(assignment):
    """{mistake id: (title, advice)} from the assignment's checks (empty without a checks module)."""
    from . import checking
    try:
        return {i: (m.title, m.advice) for i, m in checking.registry(checking.chapter_checks(assignment)).items()}
    except ImportError:
        return {}


# ---------------------------------------------------------------- plots and page


def _png(fig):
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def histogram(report):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scores = [s.score for s in report.graded]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    top = max(report.max_score, 1)
    ax.hist(scores, bins=min(25, max(5, int(top))), range=(0, top), color="tab:blue", edgecolor="white")
    ax.set_xlabel(f"score (of {report.max_score:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{report.assignment}: {len(scores)} graded submissions")
    fig.tight_layout()
    return _png(fig)


def failing_chart(report):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = report.failing_share()[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.3))
    ax.barh([t.removeprefix("test_") for t, _, _ in rows], [share for _, share, _ in rows], color="tab:red")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of graded students failing the test")
    fig.tight_layout()
    return _png(fig)


def render(report):
    """The page (a string of HTML)."""
    e = html.escape
    graded = report.graded
    scores = sorted(s.score for s in graded)
    median = scores[len(scores) // 2] if scores else 0.0
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(report.assignment)}: class report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}"
             "td.n{text-align:right}</style></head><body>",
             f"<h1>{e(report.assignment)}: class report</h1>",
             f"<p>{len(report.students)} students, {len(graded)} graded; median score {median:g} of "
             f"{report.max_score:g}. Written {datetime.datetime.now():%Y-%m-%d %H:%M}.</p>"]
    if graded:
        parts += ["<h2>Scores</h2>", f"<img alt='histogram of the scores' src='{histogram(report)}'>",
                  "<h2>Share of students failing each test</h2>",
                  f"<img alt='share failing each test' src='{failing_chart(report)}'>",
                  _table(["test", "failing", "share"],
                         [(t, n, f"{share:.0%}") for t, share, n in report.failing_share()])]
    parts += ["<h2>Diagnosed mistakes</h2>",
              _table(["mistake", "students", "what it is", "advice given"],
                     [(m, c, title, advice) for m, c, title, advice in report.mistakes()])
              if report.mistakes() else "<p>No mistake was diagnosed.</p>"]
    parts += ["<h2>Badly calibrated tests?</h2>",
              "<p>Failed by nobody (too easy, or not testing what it should): "
              f"{_names(report.never_failed())}.</p>",
              "<p>Failed by everybody (broken, misleading, or not taught yet): "
              f"{_names(report.always_failed())}.</p>"]
    parts += ["<h2>Slowest submissions (autograde time)</h2>",
              _table(["student", "seconds", "score"], [(s.id, f"{s.seconds:.1f}", f"{s.score:g}")
                                                        for s in report.slowest()])
              if report.slowest() else "<p>No grading time recorded.</p>"]
    parts += ["<h2>Broken submissions</h2>",
              _table(["student", "score", "what happened"],
                     [(s.id, f"{s.score:g}", "; ".join(s.broken)) for s in report.broken()])
              if report.broken() else "<p>None.</p>"]
    return "".join(parts) + "</body></html>"


def _names(tests):
    return ", ".join(f"<code>{html.escape(t)}</code>" for t in tests) if tests else "none"


def _table(header, rows):
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='n'>{e(str(v))}</td>" if isinstance(v, (int, float))
                                    else f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write(course, assignment, path=None):
    """Write the report (default: grading/reports/<assignment>.html); returns its path."""
    path = pathlib.Path(path or course.path(settings.GRADING_DIR, "reports", f"{assignment}.html"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(collect(course, assignment)), encoding="utf-8")
    return path
