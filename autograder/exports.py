"""Grades in the layouts that LMS gradebooks import: Canvas, Moodle, and a generic wide CSV.

All three are one row per student and one column per assignment (the score: automatic plus
manual points, as nbgrader's gradebook adds them; a student without a submission gets 0, as in
``python -m autograder export``'s long CSV). Students are those of the gradebook.

Canvas ("Gradebook > Import", a CSV in the layout of Canvas's own gradebook export):
    Student, ID, SIS User ID, SIS Login ID, Section, <assignment>...
    and a second row "    Points Possible" giving each assignment's maximum.
    Canvas matches rows to students by ID (Canvas's numeric user id, which nbgrader does not
    know: left empty), then by SIS User ID, then by SIS Login ID: both carry nbgrader's student
    id, which must therefore be the student's SIS id or login in Canvas. A column named after an
    assignment that Canvas does not have creates it on import (with the points possible); to fill
    an existing one, rename the column to Canvas's "Name (id)" header, or pick it in the import's
    preview.
    https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807

Moodle ("Grades > Import > CSV file", the layout of Moodle's own plain-text grade export):
    First name, Last name, ID number, Email address, "Assignment: <assignment> (Real)"...
    In the import's "Identify user" step map "ID number" to the user field "ID number" (nbgrader's
    student id must be the student's Moodle ID number), or "Email address" to "Email address";
    then map each assignment column to its grade item (or "new grade item").
    https://docs.moodle.org/en/Grade_import

Generic: student, first_name, last_name, email, then one column per assignment with its score,
and a "<assignment> (max)" column; for anything else (spreadsheets, other LMSs).
"""
import csv
import os
import pathlib
import tempfile

FORMATS = ("generic", "canvas", "moodle")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["First name", "Last name", "ID number", "Email address"]


def gradebook_table(gb, assignments=None):
    """(students, assignments, scores): students as dicts (id, first_name, last_name, email),
    assignments as (name, max score) in gradebook order, scores {(student, assignment): score}."""
    from nbgrader.api import MissingEntry
    chosen = [a for a in gb.assignments if not assignments or a.name in assignments]
    students = [{"id": s.id, "first_name": s.first_name or "", "last_name": s.last_name or "",
                 "email": s.email or ""} for s in gb.students]
    scores = {}
    for a in chosen:
        for s in students:
            try:
                scores[(s["id"], a.name)] = gb.find_submission(a.name, s["id"]).score
            except MissingEntry:
                scores[(s["id"], a.name)] = 0.0
    return students, [(a.name, a.max_score) for a in chosen], scores


def rows(layout, students, assignments, scores):
    """The CSV rows (header first) of one layout."""
    if layout == "canvas":
        header = CANVAS_IDENTITY + [name for name, _ in assignments]
        points = ["    Points Possible", "", "", "", ""] + [_number(top) for _, top in assignments]
        body = [[_full_name(s), "", s["id"], s["id"], ""] + [_number(scores[(s["id"], a)]) for a, _ in assignments]
                for s in students]
        return [header, points] + body
    if layout == "moodle":
        header = MOODLE_IDENTITY + [f"Assignment: {name} (Real)" for name, _ in assignments]
        body = [[s["first_name"], s["last_name"], s["id"], s["email"]]
                + [_number(scores[(s["id"], a)]) for a, _ in assignments] for s in students]
        return [header] + body
    if layout == "generic":
        header = ["student", "first_name", "last_name", "email"]
        for name, _ in assignments:
            header += [name, f"{name} (max)"]
        body = []
        for s in students:
            row = [s["id"], s["first_name"], s["last_name"], s["email"]]
            for name, top in assignments:
                row += [_number(scores[(s["id"], name)]), _number(top)]
            body.append(row)
        return [header] + body
    raise ValueError(f"unknown export format {layout!r}: one of {', '.join(FORMATS)}")


def write(course, path, layout="generic", assignments=None):
    """Write the gradebook's grades to ``path`` in ``layout``; the file is replaced only when complete."""
    from .pipeline import _gradebook
    with _gradebook(course) as gb:
        table = rows(layout, *gradebook_table(gb, assignments))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", newline="", dir=path.parent, suffix=".csv", delete=False) as f:
        csv.writer(f).writerows(table)
    os.replace(f.name, path)
    return path


def _full_name(student):
    """Canvas's "Student" column: "Last, First" as Canvas writes it, else the id."""
    if student["last_name"] or student["first_name"]:
        return ", ".join(n for n in (student["last_name"], student["first_name"]) if n)
    return student["id"]


def _number(value):
    return f"{float(value or 0):g}"
