# PYTHONSTARTUP of the kernels that execute the book's pages (set by autograder/book.py; IPython
# runs this file in the page's namespace, so it leaves no name behind).
#
# A page's first `glue()` imports myst_nb -> nbformat -> jsonschema, whose format checker imports
# rfc3987_syntax if it is installed; that builds a Lark grammar for IRIs: 1.7 CPU s of the 2.0-2.1
# CPU s the import costs, on every executed page. Nothing in a page validates an IRI: jsonschema skips
# that optional format when the module cannot be imported.
import sys as _sys

_sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: `import` raises ImportError
del _sys
