"""Write nbgrader source notebooks from a compact list of cells.

Contributors may edit ``solutions/*/*.ipynb`` directly in JupyterLab (nbgrader's
"Create Assignment" toolbar); this helper exists so that an assignment can also be
written as a plain Python list, which is easier to review in a diff. Each entry:

    md(text)                          a read-only markdown cell
    code(source)                      a read-only code cell (setup, demos)
    solution(source, grade_id)        student code; ### BEGIN/END SOLUTION inside
    test(source, grade_id, points)    an autograded, locked test cell
    checked(name, points)             the test cell calling checks.<name>, public and hidden
    answer(text, grade_id, points)    a manually graded written answer (markdown)
"""
import nbformat


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None, task=False):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": task}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def md(text, grade_id=None):
    cell = nbformat.v4.new_markdown_cell(text.strip())
    if grade_id:
        cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def code(source, grade_id=None):
    cell = nbformat.v4.new_code_cell(source.strip())
    if grade_id:
        cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def solution(source, grade_id):
    cell = nbformat.v4.new_code_cell(source.strip())
    cell.metadata.update(_meta(grade_id, solution=True))
    return cell


def test(source, grade_id, points=1):
    cell = nbformat.v4.new_code_cell(source.strip())
    cell.metadata.update(_meta(grade_id, grade=True, locked=True, points=points))
    return cell


def checked(name, points=1):
    """The test cell ``test_<name>_check``: the public check of ``name``, then its hidden cases."""
    return test(f"checks.{name}({name})\n### BEGIN HIDDEN TESTS\nchecks.{name}({name}, hidden=True)\n"
                "### END HIDDEN TESTS", f"test_{name}_check", points)


def answer(text, grade_id, points=2):
    cell = nbformat.v4.new_markdown_cell(text.strip())
    cell.metadata.update(_meta(grade_id, grade=True, solution=True, points=points))
    return cell


def write(cells, path):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update({
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"cell-{i:03d}"
    nbformat.validate(nb)
    nbformat.write(nb, path)
