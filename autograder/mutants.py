"""Known-wrong implementations ("mutants"): the syllabus's diagnosed mistakes.

Each mutant redefines one or more functions of an assignment's solution. The tests inject
every mutant into the solution notebook (its definitions are appended to the cell that
defines ``function``) and assert, in-process and under a real nbgrader autograde, that it
loses points only on the test cells of its layers (``test_<layer>_*``) and that the
mistake ids named in those cells are exactly ``mistakes``. The demo class uses them too.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str        # short id, also the demo student's name
    function: str    # the function whose cell receives the wrong definitions
    layers: tuple    # the layers whose test cells it may fail: test_<layer>_forward/backward ...
    source: str      # the wrong definition(s) (Python source)
    mistakes: tuple  # the ids of the mistakes its failing cells must name, exactly (empty: none)
    message: str = ""  # text every failing cell's message must contain (when no id says it)


def for_assignment(assignment):
    """The mutants of one assignment."""
    from importlib import import_module
    return import_module(f"autograder.{assignment}.mutants").MUTANTS
