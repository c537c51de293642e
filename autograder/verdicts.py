"""Trusted verdicts: the grading process, not the student's kernel, decides each test cell.

nbgrader runs the test cells in the student's own kernel, where the student's code can
patch anything: the checks module, numpy, builtins, IPython's display hooks and input
transformers. So when the grader runs a notebook, the checks only *record* (see
``autograder.checking``): each ``checks.<name>(...)`` call emits what the student's
functions returned, as a display output. This preprocessor runs in the grader, after
the notebook has executed and before nbgrader saves the scores. For every test cell it:

1. reads which checks the cell calls from the cell's *source* (restored from the
   gradebook by nbgrader's OverwriteCells, so the student cannot change it);
2. finds each call's record among the cell's outputs (forged or missing records fail);
3. judges the record here, with the grader's own inputs and torch references, and
   replaces the cell's outputs with the verdict: a ✓ line, or an error with the message
   a student reads (nbgrader scores a test cell 0 when it has an error output).

Anything else the kernel printed in a test cell is dropped, so stray output (a fake ✓,
a number a display hook made up, a warning on stderr) neither earns nor costs points.

It also reads the student's code for uses of the oracle: a solution that imports torch,
scikit-learn (the references' libraries) or the course's package (``autograder``: its checks and references), directly or through
names and functions that do, or that runs code built from strings (exec, eval,
__import__), is flagged in ``nb.metadata["nn_course"]["flags"]`` (the grading table shows
them). With ``TrustedVerdicts.oracle_policy = "zero"`` the test cells of such functions
score zero.
"""
import ast
import collections

from nbgrader.preprocessors import NbGraderPreprocessor
from nbformat import NotebookNode
from traitlets import Enum

from . import records
from .checking import chapter_checks, render

ORACLE_ROOTS = {"torch": "imports torch", "sklearn": "imports scikit-learn",
                "autograder": "imports the course's package (its checks and references)"}
DYNAMIC_CODE = {"exec", "eval", "compile", "__import__", "importlib", "globals", "vars"}
METADATA_KEY = "nn_course"


class TrustedVerdicts(NbGraderPreprocessor):
    """Judge every check call of every test cell in the grading process (see the module)."""

    oracle_policy = Enum(["flag", "zero"], default_value="flag", help=(
        "What to do with a graded function whose code uses torch or the course's package: "
        "'flag' (list it in the grading table and report) or 'zero' (also score its test cells 0)."
    )).tag(config=True)

    def preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment")
        try:
            checks = chapter_checks(assignment)
        except ModuleNotFoundError as exc:
            if exc.name not in (f"autograder.{assignment}", f"autograder.{assignment}.checks"):
                raise  # a checks module that exists but cannot be imported: our bug, loudly
            self.log.warning("No autograder.%s.checks: the test cells keep nbgrader's own verdicts.", assignment)
            return nb, resources
        tainted = oracle_uses(nb)
        flags = [f"{name}: {reason}" for name, reason in sorted(tainted.items())]
        kernel_modules = set()
        for cell in nb.cells:
            calls = check_calls(cell) if is_test_cell(cell) else []
            if calls:
                modules = self._judge_cell(cell, calls, checks, tainted)
                kernel_modules.update(modules)
            elif cell.get("cell_type") == "code":  # a check a student called in a cell of their own:
                cell.outputs = [o for o in cell.outputs  # its record means nothing to a reader
                                if records.MIME not in (o.get("data") or {})]
        if kernel_modules:
            flags.append(f"the kernel imported {', '.join(sorted(kernel_modules))} while grading")
        nb.metadata[METADATA_KEY] = {"flags": flags}
        return nb, resources

    def _judge_cell(self, cell, calls, checks, tainted):
        found = recorded(cell.outputs)
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        outputs, mistakes, modules = [], [], set()
        for name, hidden, args in calls:
            record = found[(name, hidden)].popleft() if found[(name, hidden)] else None
            if isinstance(record, dict) and isinstance(record.get("modules"), list):
                modules.update(str(m)[:40] for m in record["modules"][:5])
            passed, text, ids = self._verdict(name, hidden, args, record, errors, checks, tainted)
            if passed:
                outputs.append(NotebookNode(output_type="stream", name="stdout", text=text + "\n"))
                continue
            outputs.append(error_output(text))
            mistakes.extend(ids)
            break  # as in a student's session: the first failing check ends the cell
        cell.outputs = outputs
        cell.metadata[METADATA_KEY] = {"mistakes": list(dict.fromkeys(mistakes))}
        return modules

    def _verdict(self, name, hidden, args, record, errors, checks, tainted):
        """(passed, text, mistake ids) for one check call."""
        users = [a for a in args if a in tainted]
        if users and self.oracle_policy == "zero":
            return False, (f"{name}: scored 0 by the course's rules: {users[0]} {tainted[users[0]]}. "
                           "Solutions must be written in numpy."), ()
        if name not in checks:
            return False, f"{name}: this test cell calls a check the autograder does not know (tell your instructor).", ()
        if record is None:
            return False, missing_record(name, errors), ()
        try:
            verdict = checks[name].judge(record, hidden)
        except Exception as exc:  # a bug of ours: the student must not pay for it silently
            self.log.error("Internal error judging %s: %r", name, exc, exc_info=True)
            return False, (f"{name}: internal error of the autograder while judging this check "
                           f"({type(exc).__name__}); your instructor has been told."), ("internal.error",)
        return verdict.passed, verdict.text, verdict.mistakes


# ---------------------------------------------------------------- reading the notebook


def is_test_cell(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def check_calls(cell):
    """[(check name, hidden, [argument names])] in the order the cell's source calls them."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return []
    calls = []
    for node in _in_order(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"):
            hidden = any(k.arg == "hidden" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in node.keywords)
            args = [a.id for a in node.args if isinstance(a, ast.Name)]
            calls.append((node.func.attr, hidden, args))
    return calls


def _in_order(node):
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _in_order(child)


def recorded(outputs):
    """{(check, hidden): records in output order} from a cell's display outputs."""
    found = collections.defaultdict(collections.deque)
    for out in outputs:
        data = out.get("data") if out.get("output_type") in ("display_data", "execute_result") else None
        record = data.get(records.MIME) if isinstance(data, dict) else None
        if isinstance(record, dict) and isinstance(record.get("check"), str):
            found[(record["check"], record.get("hidden") is True)].append(record)
    return found


def missing_record(name, errors):
    """Why a check has no results, in words."""
    if errors:
        last = errors[-1]
        reason = f"{last.get('ename', 'Error')}: {str(last.get('evalue', ''))[:300]}"
        return f"{name}: the check could not run: {reason}"
    return (f"{name}: the check's results are missing: the test cell did not run to the end "
            "(was it skipped, or its output replaced?).")


def error_output(text):
    return NotebookNode(output_type="error", ename="CheckFailed", evalue=text, traceback=render(text))


# ---------------------------------------------------------------- oracle use


def _student_cells(nb):
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and not meta.get("locked") and not is_test_cell(cell):
            yield cell


def _python(source):
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def oracle_uses(nb):
    """{name: reason} for every name the student's cells bind to the oracle: imports of
    torch or the course's package, and (transitively) the functions and variables that
    use them; code built from strings (exec, eval, __import__) counts too."""
    statements = [s for cell in _student_cells(nb) for s in (getattr(_python(cell.source), "body", None) or [])]
    tainted = {}
    for statement in statements:
        for node in ast.walk(statement):
            for module, alias in _imports(node):
                if module.split(".")[0] in ORACLE_ROOTS:
                    tainted[alias] = ORACLE_ROOTS[module.split(".")[0]]
            if isinstance(node, ast.Name) and node.id in DYNAMIC_CODE | {"checks"}:
                for bound in _bound(statement):
                    tainted.setdefault(bound, "runs code built from strings (exec, eval, __import__)"
                                       if node.id != "checks" else "calls the course's checks")
    changed = True
    while changed:  # functions and variables that use a tainted name are tainted too
        changed = False
        for statement in statements:
            used = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)} & set(tainted)
            for bound in _bound(statement):
                if used and bound not in tainted:
                    tainted[bound] = f"uses {sorted(used)[0]}, which {tainted[sorted(used)[0]]}"
                    changed = True
    return tainted


def _imports(node):
    if isinstance(node, ast.Import):
        return [(a.name, (a.asname or a.name).split(".")[0]) for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [(node.module, a.asname or a.name) for a in node.names]
    return []


def _bound(statement):
    """The top-level names a statement defines."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [alias for _, alias in _imports(statement)]
    targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]
