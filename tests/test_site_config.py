"""Publishing and the one repository-URL setting (issue 12).

- .github/workflows/book.yml is valid, runs the same build command as tests/test_book.py and
  deploys _build/html with GitHub's Pages actions;
- binder/ builds an image with the CPU torch and the course's pins;
- repository.url in _config.yml is the only place the repository is named: changing it
  changes the released notebooks (setup cell and book links), the book's base URL and the
  workflow's check, and README and the workflow hold no URL of their own.
"""
import json
import re
import shutil
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from autograder import book, links
from conftest import ASSIGNMENTS, ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
OLD_URL = links.repository_url(ROOT)  # the setting today
NEW_URL = "https://github.com/Another-Org/a-fork"


def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job):
    return workflow()["jobs"][job]["steps"]


def test_workflow_builds_on_push_to_main_and_deploys_pages():
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert (flow["permissions"]["pages"], flow["permissions"]["id-token"]) == ("write", "write")
    used = [s.get("uses", "").split("@")[0] for s in steps("build") + steps("deploy")]
    for action in ("actions/checkout", "actions/setup-python", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in used, action
    upload = next(s for s in steps("build") if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert workflow()["jobs"]["deploy"]["needs"] == "build"


def test_workflow_runs_the_readme_and_test_build_command():
    runs = [s.get("run", "") for s in steps("build")]
    builds = [r for r in runs if "autograder book" in r or "jupyter-book" in r]
    assert builds == [book.COMMAND], builds  # tests/test_book.py runs book.COMMAND too
    readme = (ROOT / "README.md").read_text()
    first_command = re.search(r"```bash\n(.*?)\n```", readme, flags=re.S).group(1)
    assert first_command.strip().endswith(book.COMMAND), first_command


def test_binder_installs_the_cpu_torch_and_the_course_pins():
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-r ../requirements.txt" in lines
    pins = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==\d", pins, flags=re.M), "torch must be pinned for Binder's image"
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_book_url_is_derived_from_the_repository_url():
    assert links.book_url("https://github.com/nn-training-course/training-neural-networks") == \
        "https://nn-training-course.github.io/training-neural-networks"
    assert links.book_url(NEW_URL + ".git") == "https://another-org.github.io/a-fork"
    with pytest.raises(ValueError):
        links.book_url("https://example.org/a/b")
    config = SimpleNamespace(html_theme_options={"repository_url": NEW_URL}, html_baseurl="")
    book._derive_baseurl(None, config)
    assert config.html_baseurl == "https://another-org.github.io/a-fork/"


def test_readme_and_workflow_name_no_repository():
    for path in (ROOT / "README.md", WORKFLOW):
        text = path.read_text()
        assert "github.com/nn-training-course" not in text and "github.io" not in text, path


def test_placeholders_are_filled_and_unknown_ones_refused():
    urls = {"repository_url": NEW_URL, "book_url": links.book_url(NEW_URL)}
    assert links.fill('%pip install "autograder @ git+{{ repository_url }}"', urls) == \
        f'%pip install "autograder @ git+{NEW_URL}"'
    assert links.fill("[x]({{book_url}}/book/a.html)", urls) == "[x](https://another-org.github.io/a-fork/book/a.html)"
    with pytest.raises(KeyError):
        links.fill("{{ book_url }}", {"repository_url": NEW_URL})


def course_copy(tmp_path, url):
    """A course folder: solutions/ converted to placeholders, a _config.yml naming ``url``."""
    config = (ROOT / "_config.yml").read_text()
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "_config.yml").write_text(config)  # convert against the current setting...
    links.use_placeholders(tmp_path)
    assert f"url: {OLD_URL}\n" in config
    (tmp_path / "_config.yml").write_text(config.replace(f"url: {OLD_URL}\n", f"url: {url}\n"))  # ...then change it
    assert links.repository_url(tmp_path) == url
    return tmp_path


def release_all(root):
    from autograder import pipeline
    course = pipeline.Course(root)
    for assignment in ASSIGNMENTS:
        pipeline.release(course, assignment)
    return {a: nbformat.read(str(root / "exercises" / a / f"{a}.ipynb"), as_version=4) for a in ASSIGNMENTS}


def sources(nb):
    return "\n".join(cell.source for cell in nb.cells)


@pytest.mark.slow
def test_converted_solutions_release_the_committed_exercises(tmp_path):
    """links.use_placeholders (the one-time conversion of solutions/) changes no released byte."""
    root = course_copy(tmp_path, links.repository_url(ROOT))
    for a in ASSIGNMENTS:  # every solution notebook names the repository (its setup cell)
        assert links.PLACEHOLDER.search((root / "solutions" / a / f"{a}.ipynb").read_text()), a
    release_all(root)
    for a in ASSIGNMENTS:
        fresh = json.loads((root / "exercises" / a / f"{a}.ipynb").read_text())
        committed = json.loads((ROOT / "exercises" / a / f"{a}.ipynb").read_text())
        assert fresh == committed, a


@pytest.mark.slow
def test_changing_the_setting_changes_every_released_notebook(tmp_path):
    old_book = links.book_url(OLD_URL)
    committed = {a: sources(nbformat.read(str(ROOT / "exercises" / a / f"{a}.ipynb"), as_version=4))
                 for a in ASSIGNMENTS}
    released = {a: sources(nb) for a, nb in release_all(course_copy(tmp_path, NEW_URL)).items()}
    for a, text in released.items():
        assert OLD_URL not in text and old_book not in text and "{{" not in text, a
        assert f'%pip install -q "autograder @ git+{NEW_URL}"' in text, a
        # every link to the book moved, none lost
        assert text.count("https://another-org.github.io/a-fork/book/") == committed[a].count(old_book + "/book/"), a


def test_solutions_hold_placeholders_not_urls():
    """After the one-time conversion (links.use_placeholders), solutions/ name no URL themselves."""
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")) + sorted((ROOT / "solutions").glob("build_*.py")):
        text = path.read_text()
        assert OLD_URL not in text and links.book_url(OLD_URL) not in text, (
            f"{path.relative_to(ROOT)} names the repository: run "
            "python -c \"from autograder import links; print(*links.use_placeholders(), sep='\\n')\"")


@pytest.mark.parametrize("repository, ok", [(OLD_URL.split("github.com/")[1], True), ("someone/else", False)])
def test_workflow_stops_when_the_setting_names_another_repository(repository, ok):
    import subprocess
    check = next(s["run"] for s in steps("build") if "repository.url" in s.get("name", ""))
    command = check.replace("${{ github.server_url }}", "https://github.com").replace(
        "${{ github.repository }}", repository)
    run = subprocess.run(["bash", "-e", "-c", command], cwd=ROOT, capture_output=True, text=True)
    assert (run.returncode == 0) == ok, run.stderr


def test_build_shares_the_cores_and_keeps_what_the_caller_set(monkeypatch):
    import os
    for variable in (*book.THREAD_VARIABLES, "PYTHONSTARTUP"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    book._share_the_cores(2)
    assert (os.environ["OMP_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"]) == ("2", "2")
    assert os.environ["MKL_NUM_THREADS"] == "3"
    assert os.path.isfile(os.environ["PYTHONSTARTUP"])


def test_page_kernels_skip_rfc3987_syntax_and_still_validate_notebooks():
    import subprocess
    import sys
    startup = ROOT / "autograder" / "book_kernel_startup.py"
    code = (f"namespace = {{}}; exec(open({str(startup)!r}).read(), namespace); "
            "assert '_sys' not in namespace; import sys, nbformat, myst_nb.ext.glue; "
            "assert sys.modules['rfc3987_syntax'] is None; nbformat.validate(nbformat.v4.new_notebook()); print('ok')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr[-2000:]


def test_pages_take_the_url_from_the_setting(tmp_path):
    """Book pages name no repository; a page's {{ repository_url }} is filled at build time
    (source-read) from _config.yml, so changing the setting changes the page."""
    for page in sorted((ROOT / "book").rglob("*.md")):
        text = page.read_text()
        assert OLD_URL not in text and links.book_url(OLD_URL) not in text, page.relative_to(ROOT)
    assert "{{ repository_url }}" in (ROOT / "book" / "intro.md").read_text()
    config = (ROOT / "_config.yml").read_text()
    (tmp_path / "_config.yml").write_text(config.replace(f"url: {OLD_URL}\n", f"url: {NEW_URL}\n"))
    source = [(ROOT / "book" / "intro.md").read_text()]
    book._fill_links(SimpleNamespace(srcdir=str(tmp_path)), "book/intro", source)
    assert f"git clone {NEW_URL} " in source[0] and "{{" not in source[0]
