"""The instructor's side of the course that students never install.

Everything here is kept out of the ``autograder`` package that a student's notebook
installs (pyproject.toml packages only ``autograder*``), because it holds near-solutions:

- ``instructor.mutants.<chapter>``: the syllabus's diagnosed mistakes as wrong
  implementations of the graded functions (see ``autograder.mutants``), used by the tests
  and by ``python -m autograder demo``.
"""
