"""Training Neural Networks, Part I: the course's Python package.

- ``autograder.checking``: the checker engine (cases, comparisons, diagnoses).
- ``autograder.gradcheck``: numerical gradient checks students can call themselves.
- ``autograder.<chapter>.reference``: torch reference implementations.
- ``autograder.<chapter>.checks``: the checks the assignment notebooks call.
- ``autograder.course`` / ``autograder.pipeline`` / ``autograder.cli``: the
  instructor's nbgrader pipeline (``python -m autograder --help``).
"""
__version__ = "0.1.0"
