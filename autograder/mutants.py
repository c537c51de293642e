"""Known-wrong implementations ("mutants"): the syllabus's diagnosed mistakes.

Each mutant redefines one or more functions of an assignment's solution; the mutants of a
chapter are in ``instructor/mutants/<chapter>.py``, outside this package. The tests inject
every mutant into the solution notebook (its definitions are appended to the cell that
defines ``function``) and assert, in-process and under a real nbgrader autograde, that it
loses points only on the test cells of its layers (``test_<layer>_*``) and on exactly the
capstone cells listed in ``capstones``, and that the mistake ids named in its layers' cells are
exactly ``mistakes`` (a capstone's message names the outcome missed or the first difference). The demo class uses them too.
"""
import dataclasses
import pathlib
import sys


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str        # short id, also the demo student's name
    function: str    # the function whose cell receives the wrong definitions
    layers: tuple    # the layers whose test cells it may fail: test_<layer>_forward/backward ...
    source: str      # the wrong definition(s) (Python source)
    mistakes: tuple  # the ids of the mistakes its failing cells must name, exactly (empty: none)
    message: str = ""  # text every failing cell's message must contain (when no id says it)
    capstones: tuple = ()  # the capstone cells (grade ids) it fails too, exactly: its layer breaks their outcome


def for_assignment(assignment):
    """The mutants of one assignment, from ``instructor/mutants/<assignment>.py`` in the course
    repository: they hold near-solutions, so they are not part of the package students install."""
    from importlib import import_module
    repository = str(pathlib.Path(__file__).resolve().parents[1])
    if (pathlib.Path(repository) / "instructor").is_dir() and repository not in sys.path:
        sys.path.append(repository)  # the demo run from another folder
    try:
        return import_module(f"instructor.mutants.{assignment}").MUTANTS
    except ModuleNotFoundError as exc:
        if exc.name not in ("instructor", "instructor.mutants"):
            raise
        raise ModuleNotFoundError(f"the mutants of {assignment} live in the course repository's instructor/ "
                                  "folder, which a student's install does not have: run this from a clone",
                                  name=exc.name) from None
