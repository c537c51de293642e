"""A synthetic class, to try the whole grading flow in a minute.

``python -m autograder demo`` copies solutions/ into a temporary course folder,
releases the assignment and submits one notebook per kind of student:

- ``correct``: the solution, filled into the released notebook;
- one student per known mistake (instructor/mutants/<assignment>.py);
- ``not_started``: the released notebook as it is;
- ``deleted_a_test``: the solution, with one test cell deleted (nbgrader restores it);
- ``edited_the_tests``: the released notebook with every test cell replaced by ``pass``
  (nbgrader restores locked cells from the source: still zero);
- ``loops``: a function that loops forever and swallows KeyboardInterrupt;
- ``crashes``: a function that kills the Python process;
- ``malformed``: a file that is not a notebook (truncated JSON).
"""
import copy
import pathlib
import shutil

import nbformat

from .mutants import for_assignment
from .pipeline import Course

LOOPS = '''
def {name}(*args, **kwargs):
    while True:          # a student's stray loop; it even swallows interrupts
        try:
            while True:
                pass
        except BaseException:
            pass
'''

CRASHES = '''
def {name}(*args, **kwargs):
    import os
    os._exit(1)          # kills the kernel, like a segfault would
'''


def fill_in(released, solution, extra=None):
    """The released notebook with each solution cell's code filled in.

    extra: {function name: source appended to the cell that defines it}.
    """
    answers = {_grade_id(c): c.source for c in solution.cells if _grade_id(c)}
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    for function, source in (extra or {}).items():
        append_to_definition(nb, function, source)
    return nb


def append_to_definition(nb, function, source):
    """Append ``source`` to the (non-test) code cell that defines ``function``, in place.

    Appended, a new definition replaces the cell's own when the cell runs.
    """
    for cell in nb.cells:
        is_test = cell.metadata.get("nbgrader", {}).get("grade")
        if cell.cell_type == "code" and not is_test and f"def {function}(" in cell.source:
            cell.source += "\n\n" + source.strip() + "\n"
            return nb
    raise LookupError(f"no cell defines {function}")


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def submissions(course, assignment, broken=True):
    """{student: notebook or raw text} for the synthetic class.

    broken: include the looping, crashing and malformed submissions.
    """
    (name,) = [p.name for p in course.path("exercises", assignment).glob("*.ipynb")]
    released = nbformat.read(str(course.path("exercises", assignment, name)), as_version=4)
    solution = nbformat.read(str(course.path("solutions", assignment, name)), as_version=4)
    mutants = for_assignment(assignment)
    out = {"correct": fill_in(released, solution), "not_started": released}
    out["deleted_a_test"] = copy.deepcopy(out["correct"])
    tests = [c for c in out["deleted_a_test"].cells if c.metadata.get("nbgrader", {}).get("grade")
             and c.cell_type == "code"]
    out["deleted_a_test"].cells.remove(tests[0])
    out["edited_the_tests"] = copy.deepcopy(released)
    for cell in out["edited_the_tests"].cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            cell.source = "pass"
    out.update({m.name: fill_in(released, solution, {m.function: m.source}) for m in mutants})
    if not broken:
        return name, out
    # Break functions that few test cells use, so the demo stays quick.
    looping, crashing = mutants[-1].function, mutants[1 % len(mutants)].function
    out["loops"] = fill_in(released, solution, {looping: LOOPS.format(name=looping)})
    out["crashes"] = fill_in(released, solution, {crashing: CRASHES.format(name=crashing)})
    out["malformed"] = nbformat.writes(released)[: 2000]  # truncated mid-file
    return name, out


def make_class(root, assignment="activations", solutions=None, broken=True):
    """Create a course folder with a released assignment and a synthetic class."""
    from .pipeline import release
    root = pathlib.Path(root)
    solutions = pathlib.Path(solutions or pathlib.Path(__file__).resolve().parents[1] / "solutions")
    shutil.copytree(solutions / assignment, root / "solutions" / assignment, dirs_exist_ok=True)
    course = Course(root)
    release(course, assignment)
    name, students = submissions(course, assignment, broken)
    for student, nb in students.items():
        folder = course.submitted(student, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        text = nb if isinstance(nb, str) else nbformat.writes(nb)
        (folder / name).write_text(text)
    return course
