"""nbgrader settings for this course; the repository root is the course root.

The settings live in autograder/course.py so that `python -m autograder ...` and
plain `nbgrader ...` commands behave the same. See that module for every option.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)  # import the course package even if it is not installed

from autograder.course import configure  # noqa: E402

c = get_config()  # noqa: F821 (provided by traitlets)
configure(c, root=here)
