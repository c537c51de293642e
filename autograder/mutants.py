"""Known-wrong implementations ("mutants"): the syllabus's diagnosed mistakes.

Each mutant redefines one function of an assignment's solution. The tests inject
every mutant into the solution notebook (its definition is appended to the cell
that defines the function) and assert that, under a real nbgrader autograde, it
loses points only on the test cells of its layers (``test_<layer>_*``) and that the
feedback names the mistake (``diagnosis``). The demo class uses them too.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str        # short id, also the demo student's name
    function: str    # the function it redefines
    layers: tuple    # the layers whose test cells it may fail: test_<layer>_forward/backward ...
    source: str      # the wrong definition (Python source)
    diagnosis: str   # text that the check's message must contain


def for_assignment(assignment):
    """The mutants of one assignment."""
    from importlib import import_module
    return import_module(f"autograder.{assignment}.mutants").MUTANTS
