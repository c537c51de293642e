"""The kernels the grader starts: spares started ahead of time, and what every kernel preloads.

Real kernels (sandboxed when bubblewrap works here), a few seconds: marked slow.
"""
import nbformat
import psutil
import pytest

from autograder import course

pytestmark = pytest.mark.slow

PROBE = ("import sys\n"
         "print(open('who.txt').read(), 'numpy' in sys.modules, sorted(k for k in dir() if not k.startswith('_')"
         " and k not in ('In', 'Out', 'exit', 'quit', 'get_ipython', 'open', 'sys')))")


def _run(config, folder):
    executor = course.ResilientExecute(config=config)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(folder)}})
    return "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()


def test_each_student_gets_a_kernel_with_their_own_files_and_an_empty_namespace(tmp_path):
    config = course.make_config(tmp_path / "course")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    outputs = []
    for student in ("ada", "grace", "alan"):
        folder = tmp_path / student
        folder.mkdir()
        (folder / "who.txt").write_text(student)
        outputs.append(_run(config, folder))
    # The second and third kernels were spares, started before their student was known.
    assert outputs == [f"{s} True []" for s in ("ada", "grace", "alan")]  # numpy preloaded, no name bound
    course.SPARES.shutdown()
    psutil.wait_procs([p for p in psutil.Process().children(recursive=True) if p.pid not in before], timeout=5)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [p.cmdline()[:3] for p in left]
