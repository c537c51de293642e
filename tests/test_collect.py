"""collect: submissions from a download folder land in nbgrader's layout."""
import shutil

import pytest

from autograder import pipeline
from conftest import ROOT


def test_collect_accepts_files_and_folders(tmp_path):
    shutil.copytree(ROOT / "exercises" / "activations", tmp_path / "course" / "exercises" / "activations")
    course = pipeline.Course(tmp_path / "course")
    downloads = tmp_path / "downloads"
    (downloads / "bob").mkdir(parents=True)
    released = (ROOT / "exercises" / "activations" / "activations.ipynb").read_text()
    (downloads / "alice.ipynb").write_text(released)
    (downloads / "bob" / "my copy of activations.ipynb").write_text(released)
    (downloads / "notes.txt").write_text("not a submission")
    (downloads / "carol").mkdir()  # an empty folder: nothing to collect
    assert pipeline.collect(course, "activations", downloads) == ["alice", "bob"]
    for student in ("alice", "bob"):
        path = course.submitted(student, "activations") / "activations.ipynb"
        assert path.read_text() == released  # saved under the released notebook's name
    assert course.students("activations") == ["alice", "bob"]


def test_collect_refuses_an_unknown_assignment(tmp_path):
    with pytest.raises(ValueError, match="one released notebook"):
        pipeline.collect(pipeline.Course(tmp_path), "nope", tmp_path)
