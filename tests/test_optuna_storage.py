"""Several worker processes share one Optuna study through RDB storage (chapter 5, issue 10).

Two separate ``python`` processes optimise the same study, first in an SQLite file, then in a
real PostgreSQL server started for the test (initdb in a temporary folder, a free port on
127.0.0.1, stopped afterwards even when the test fails). Each worker waits for a shared start
signal so that both write to the storage at the same time. The study must then hold every
trial exactly once: 2 x TRIALS trials, numbered 0..2*TRIALS-1, all complete, each worker's
trials 0..TRIALS-1 tagged once, each value the objective of its own parameters, and no
"database is locked" (or any other) error from either worker.

This file is also the workers' script: ``python test_optuna_storage.py worker URL ...``.
"""
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

STUDY = "shared-study"
WORKERS = 2
TRIALS = 20            # per worker (with the SQLite timeout at 0, "database is locked" in 3 runs of 3)
WORKER_TIMEOUT = 120   # seconds; a hung worker fails the test instead of hanging it
# SQLite serialises writers with a file lock; a writer that finds it taken waits up to this many
# seconds (sqlite3's `timeout`, passed through SQLAlchemy) instead of failing at once with
# "database is locked". Optuna's RDBStorage docs show this setting; its FAQ recommends a
# client/server database (or JournalStorage) for heavier parallel use.
SQLITE_ENGINE_KWARGS = {"connect_args": {"timeout": 60}}
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def objective_value(x, lr):
    return (x - 0.3) ** 2 + (lr - 1e-3) ** 2


def storage_for(url):
    import optuna
    kwargs = SQLITE_ENGINE_KWARGS if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


# --------------------------------------------------------------------------- the worker process

def worker_main(url, worker, n_trials, go_file):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deadline = time.time() + 60
    while not Path(go_file).exists():   # both workers start together
        if time.time() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.01)
    study = optuna.load_study(study_name=STUDY, storage=storage_for(url),
                              sampler=optuna.samplers.RandomSampler(seed=worker))
    counter = iter(range(n_trials))

    def objective(trial):
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("index", next(counter))
        x = trial.suggest_float("x", -1, 1)
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        return objective_value(x, lr)

    study.optimize(objective, n_trials=n_trials)


# --------------------------------------------------------------------------- the test's side

def run_workers(url, tmp_path):
    """Create the study, start the workers together, wait; return their (returncode, stderr)."""
    import optuna
    optuna.create_study(study_name=STUDY, storage=storage_for(url))
    go_file = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, __file__, "worker", url, str(w), str(TRIALS), str(go_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(WORKERS)]
    go_file.touch()
    results = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=WORKER_TIMEOUT)
            results.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def assert_every_trial_once(url, results):
    import optuna
    for worker, (code, err) in enumerate(results):
        assert "database is locked" not in err, f"worker {worker}: {err[-2000:]}"
        assert code == 0, f"worker {worker} exited with {code}: {err[-2000:]}"
    trials = optuna.load_study(study_name=STUDY, storage=storage_for(url)).get_trials(deepcopy=False)
    assert len(trials) == WORKERS * TRIALS, f"{len(trials)} trials instead of {WORKERS * TRIALS}"
    assert sorted(t.number for t in trials) == list(range(WORKERS * TRIALS))
    states = {t.state for t in trials}
    assert states == {optuna.trial.TrialState.COMPLETE}, f"trial states {states}"
    tags = sorted((t.user_attrs["worker"], t.user_attrs["index"]) for t in trials)
    assert tags == [(w, i) for w in range(WORKERS) for i in range(TRIALS)], "a trial lost or stored twice"
    for t in trials:   # each value belongs to its own trial's parameters (nothing crossed over)
        assert t.value == pytest.approx(objective_value(t.params["x"], t.params["lr"]), rel=1e-12)


def test_two_workers_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    results = run_workers(url, tmp_path)
    assert_every_trial_once(url, results)


# --------------------------------------------------------------------------- PostgreSQL

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_binary(name):
    for folder in PG_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def as_server_user(cmd):
    """initdb and postgres refuse to run as root: as root, run them as the unprivileged `nobody`."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "nobody", "--"] + cmd


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                    "(.ci/run installs them from Debian's postgresql package)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: initdb cannot be run as an unprivileged user")
    folder = Path(tempfile.mkdtemp(prefix="optuna-pg-"))  # not tmp_path: the server's user must reach it
    data = folder / "data"
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    port = free_port()
    started = False
    try:
        subprocess.run(as_server_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                                       "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, text=True, timeout=60)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
        subprocess.run(as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"),
                                       "-w", "-t", "30", "start"]),
                       check=True, capture_output=True, text=True, timeout=60)
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as e:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {e.cmd}\n{e.stdout}\n{e.stderr}\n{log}")
    finally:
        if started:
            subprocess.run(as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    results = run_workers(postgres_url, tmp_path)
    assert_every_trial_once(postgres_url, results)


# --------------------------------------------------------------------------- the book's worker script

PAGE = Path(__file__).resolve().parents[1] / "book" / "hyperparameters" / "optuna.md"
WRITEFILE = re.compile(r"^%%writefile \{WORKDIR\}/digits_worker\.py\n(.*?)^```", re.S | re.M)


def test_the_books_worker_script_runs_against_postgresql(postgres_url, tmp_path):
    """The Optuna page's digits_worker.py, unchanged, pointed at a PostgreSQL URL: two workers, one study."""
    import optuna
    found = WRITEFILE.search(PAGE.read_text())
    assert found, f"no %%writefile cell for digits_worker.py in {PAGE}"
    script = tmp_path / "digits_worker.py"
    script.write_text(found.group(1))
    study_name, per_worker = "book-page-study", 2
    optuna.create_study(study_name=study_name, storage=postgres_url, direction="maximize")
    workers = [subprocess.Popen([sys.executable, str(script), postgres_url, study_name, str(per_worker), "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=WORKER_TIMEOUT) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in outputs]
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).trials
    assert len(trials) == 2 * per_worker
    assert {t.user_attrs["worker"] for t in trials} == {w.pid for w in workers}
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished and len(t.intermediate_values) == 1 for t in trials)
    assert set(trials[0].params) == {"lr", "weight_decay", "hidden", "one_minus_momentum"}


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _, _, url, worker, n_trials, go_file = sys.argv
    worker_main(url, int(worker), int(n_trials), go_file)
