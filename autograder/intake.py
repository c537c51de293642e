"""Reading what students hand in, without trusting it.

Everything the grader itself reads or writes inside a student's folder goes
through here. The folders under grading/ hold files that a student (or a
student's kernel) may have shaped: a notebook replaced by a symbolic link to the
gradebook, a 100 MB file, a notebook saved by a very old Jupyter, a test cell
pasted twice. So:

- links are never followed: files are opened with O_NOFOLLOW and must be
  regular files; links found in a folder are reported and ignored (or removed
  where the grader itself is about to write);
- a file is read up to a size limit, and parsed by us, with messages in plain
  words for a student;
- a readable notebook is repaired against the assignment's cells in the
  gradebook (a BOM, duplicated or invented grade ids, a test cell turned into a
  solution cell), and every repair is noted, so that nbgrader grades what can be
  graded instead of failing the whole submission.
"""
import dataclasses
import json
import os
import pathlib
import stat

import nbformat

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # the released notebooks are ~100 kB; outputs rarely pass a few MB
PYTHON = "python"


class NotAFile(OSError):
    """A path that is a link, a folder or a device, not a regular file."""


def read_regular_file(path, limit=MAX_NOTEBOOK_BYTES):
    """The bytes of ``path``; never through a symbolic link, never more than ``limit``.

    Raises NotAFile for a link or anything but a regular file, ValueError when
    the file is larger than ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise NotAFile(f"{pathlib.Path(path).name} is a symbolic link") from exc
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile(f"{pathlib.Path(path).name} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{pathlib.Path(path).name} is {info.st_size / 2**20:.0f} MB")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{pathlib.Path(path).name} is larger than {limit / 2**20:.0f} MB")
    return data


def write_new_file(path, data):
    """Write ``data`` to ``path``, replacing a regular file; never through a link."""
    path = pathlib.Path(path)
    if path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    with os.fdopen(fd, "wb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise NotAFile(f"{path.name} is not a regular file")
        f.write(data)


def make_private_folder(base, *parts):
    """mkdir -p ``base``/``parts``, where no folder in ``parts`` may be a link.

    A link where one of those folders should be (planted by a student's code) is
    removed, not followed. ``base`` itself (the grading folder) is trusted.
    """
    path = pathlib.Path(base)
    for part in parts:
        path = path / part
        if path.is_symlink():
            path.unlink()
        path.mkdir(exist_ok=True)
    return path


def remove_links(folder):
    """Delete every symbolic link under ``folder`` (not their targets); return their names.

    Used on folders the grader is about to copy from or write into.
    """
    folder = pathlib.Path(folder)
    if folder.is_symlink():
        folder.unlink()
        return [folder.name]
    removed = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not descend into links
        for name in dirnames + filenames:
            path = pathlib.Path(dirpath, name)
            if path.is_symlink():
                path.unlink()
                removed.append(str(path.relative_to(folder)))
    return removed


def links_in(folder):
    """Names of the symbolic links directly in ``folder``."""
    folder = pathlib.Path(folder)
    return sorted(p.name for p in folder.iterdir() if p.is_symlink()) if folder.is_dir() else []


# ---------------------------------------------------------------- choosing the notebook


def choose_notebook(candidates, released_name, expected_ids=()):
    """The submitted notebook to grade, among regular-file paths, and notes on the choice.

    The file under the released name wins; otherwise the one with the most of
    the assignment's grade ids (a renamed copy beats a scratch notebook), then the
    shortest name. Returns (path or None, [notes]).
    """
    candidates = [p for p in candidates if ".ipynb_checkpoints" not in pathlib.Path(p).parts]
    if not candidates:
        return None, []
    exact = [p for p in candidates if pathlib.Path(p).name == released_name]
    if exact:
        chosen = exact[0]
    else:
        chosen = max(candidates, key=lambda p: (_known_ids(p, expected_ids), -len(pathlib.Path(p).name)))
    others = sorted(pathlib.Path(p).name for p in candidates if p != chosen)
    notes = []
    if pathlib.Path(chosen).name != released_name:
        notes.append(f"your notebook was named {pathlib.Path(chosen).name}, not {released_name}: "
                     "it was graded under the expected name")
    if others:
        notes.append(f"other notebooks in your submission were not graded: {', '.join(others)}")
    return chosen, notes


def _known_ids(path, expected_ids):
    try:
        text = read_regular_file(path).decode("utf-8-sig", errors="replace")
    except (OSError, ValueError):
        return -1
    return sum(1 for grade_id in expected_ids if f'"{grade_id}"' in text)


# ---------------------------------------------------------------- reading and repairing


@dataclasses.dataclass
class SourceCell:
    """What the gradebook says a cell with a grade id must be."""

    grade_id: str
    cell_type: str
    nbgrader: dict   # the metadata to restore


@dataclasses.dataclass
class Intake:
    """A submission read for grading: the repaired notebook, or why it cannot be graded."""

    notebook: object = None
    error: str = ""
    notes: list = dataclasses.field(default_factory=list)


def parse_notebook(data, name):
    """A v4 NotebookNode from raw bytes, or raise ValueError with a plain-words reason."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte-order mark some editors add: harmless
    if not data.strip():
        raise ValueError(f"{name} is empty (0 bytes of notebook)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not a notebook: it is not text (UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not a valid notebook: not readable as JSON at line {exc.lineno} "
                         "(was the file cut off, or edited outside Jupyter?)") from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise ValueError(f"{name} is not a notebook: the file is JSON but has no cells")
    major = raw.get("nbformat")
    if major != 4:
        raise ValueError(f"{name} is in notebook format {major}, from a very old Jupyter; "
                         "open it in a current Jupyter, save it, and submit it again")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds for a JSON file that is not a notebook
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{name} is not a valid notebook ({first[:150]})") from None
    if not nb.cells:
        raise ValueError(f"{name} has no cells: was it saved while empty? Submit the notebook with your work")
    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get("language_info", {}).get("name")
    if language and language.lower() != PYTHON:
        raise ValueError(f"{name} was saved with a kernel for {language}, not Python; this assignment is graded in Python. "
                         "Open it with the Python 3 kernel, run it, save it and submit it again")
    return nb


def repair(nb, source_cells):
    """Make each graded cell match the gradebook, in place; return notes for the student.

    - of several cells with the same grade id (a test cell copied and pasted),
      the last is graded and the others become ordinary cells (as nbgrader's
      DeduplicateIds does, but without leaving metadata it then rejects);
    - a cell with a grade id the assignment does not have becomes an ordinary cell;
    - a known cell whose nbgrader metadata was changed (a test cell turned into a
      solution cell, points edited) gets the assignment's metadata and cell type back;
      nbgrader then restores a locked cell's source.
    """
    notes, seen = [], set()
    expected_type = {s.grade_id: s for s in source_cells}
    for cell in reversed(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        source = expected_type.get(grade_id)
        if source is None:
            del cell.metadata["nbgrader"]
            if grade_id:
                notes.append(f"a cell you added carried grading metadata ({grade_id!r}): it ran as an ordinary cell")
            continue
        if grade_id in seen:
            del cell.metadata["nbgrader"]
            notes.append(f"cell {grade_id!r} appeared twice (copied and pasted?): the last copy was graded")
            continue
        seen.add(grade_id)
        if _graded_part(meta) != _graded_part(source.nbgrader) or cell.cell_type != source.cell_type:
            notes.append(f"the grading settings of cell {grade_id!r} had been changed: they were restored")
            _set_cell_type(cell, source.cell_type)
        cell.metadata["nbgrader"] = dict(source.nbgrader)
    return notes[::-1]  # in the notebook's order


def _graded_part(meta):
    return tuple(bool(meta.get(k)) for k in ("grade", "solution", "locked", "task")) + (
        float(meta.get("points") or 0),)


def _set_cell_type(cell, cell_type):
    if cell.cell_type == cell_type:
        return
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
        cell.pop("attachments", None)


def source_cells_from_gradebook(gb, notebook, assignment):
    """The assignment's graded, solution and locked cells as SourceCell, from the gradebook."""
    nb = gb.find_notebook(notebook, assignment)
    grades = {c.name: c.max_score for c in nb.grade_cells}
    solutions = {c.name for c in nb.solution_cells}
    tasks = {c.name for c in nb.task_cells}
    out = []
    for cell in nb.source_cells:
        meta = {"grade": cell.name in grades, "grade_id": cell.name, "locked": cell.locked,
                "schema_version": 3, "solution": cell.name in solutions, "task": cell.name in tasks,
                "checksum": cell.checksum}
        if cell.name in grades:
            meta["points"] = grades[cell.name]
        out.append(SourceCell(cell.name, cell.cell_type, meta))
    return out


def notes_cell(notes):
    """A markdown cell, put first in the graded notebook, that the feedback shows."""
    lines = "\n".join(f"- {note}" for note in notes)
    return nbformat.v4.new_markdown_cell(f"**Notes from the autograder about your submission**\n\n{lines}")


def read_submission(folder, released_name, source_cells):
    """Read and repair the notebook a student submitted in ``folder``: an Intake.

    Never follows links; notes what was ignored or repaired.
    """
    folder = pathlib.Path(folder)
    notes = [f"{name} is a symbolic link: it was ignored" for name in links_in(folder)]
    candidates = [p for p in sorted(folder.glob("*.ipynb")) if not p.is_symlink() and p.is_file()]
    expected_ids = [s.grade_id for s in source_cells]
    chosen, choice_notes = choose_notebook(candidates, released_name, expected_ids)
    notes += choice_notes
    if chosen is None:
        return Intake(error=f"no notebook was found in your submission (expected {released_name})", notes=notes)
    try:
        nb = parse_notebook(read_regular_file(chosen), chosen.name)
    except ValueError as exc:
        return Intake(error=str(exc), notes=notes)
    except OSError as exc:
        return Intake(error=f"{chosen.name} could not be read ({exc.strerror or exc})", notes=notes)
    notes += repair(nb, source_cells)
    if notes:
        nb.cells.insert(0, notes_cell(notes))
    return Intake(notebook=nb, notes=notes)


def read_metadata_flags(path):
    """The grader-side flags in a graded notebook's metadata (``nn_course.flags``), safely.

    A missing, linked or unreadable notebook has no flags.
    """
    try:
        raw = json.loads(read_regular_file(path).decode("utf-8-sig"))
    except (OSError, ValueError):
        return []
    flags = (raw.get("metadata") or {}).get("nn_course", {}).get("flags", []) if isinstance(raw, dict) else []
    return [str(f) for f in flags] if isinstance(flags, list) else []
