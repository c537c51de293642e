"""The book builds with warnings as errors (-W -n), every page executed."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going", "--all",
               "--path-output", str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    assert (html / "book" / "intro.html").exists()
    assignment = (html / "exercises" / "activations" / "activations.html").read_text()
    assert "NotImplementedError" in assignment and "BEGIN SOLUTION" not in assignment
    assert not (html / "solutions").exists()
    figures = list((html / "_images").glob("*.png"))
    assert len(figures) >= 10, "the executed pages should have produced figures"
