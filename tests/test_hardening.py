"""Odd and hostile input: study names that would leave --results, passwords in storage
URLs, file modes, text that looks like rich markup, seeds and budgets out of range."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, write_space

from sweep.core.durations import parse_duration
from sweep.core.errors import ConfigError
from sweep.core.redaction import redact, redact_text
from sweep.store.storage import check_study_name

BAD_NAMES = ["../escaped", "/abs/path", "a/b", ".", "..", "", "a b", "x" * 101, "tab\there"]


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_study_name_is_a_folder_name(name: str) -> None:
    with pytest.raises(ConfigError, match="expected a name of letters, digits") as info:
        check_study_name(name)
    assert "\n" not in str(info.value)
    for good in ["tiny", "my-study_2.v1", ".hidden", "x" * 100]:
        assert check_study_name(good) == good


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "SPACE", "--study", "../escaped"],
        ["run", "SPACE", "--study", "/ABS/escaped"],
        ["worker", "../escaped", "--storage", "sqlite:///x.db"],
        ["table", "../escaped"],
        ["status", "/ABS/escaped"],
        ["compare", ".."],
        ["export", "../escaped", "--out", "m.keras"],
        ["report", "../escaped"],
    ],
)
def test_every_command_refuses_a_study_name_that_leaves_results(
    tmp_path: Path, argv: list[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    space = write_space(work)
    before = files_under(tmp_path)
    argv = [str(space) if a == "SPACE" else a.replace("/ABS", str(tmp_path)) for a in argv]
    code, _, err = run_cli(*argv, "--results", "res", cwd=work)
    assert code == 2, err
    assert err.startswith("sweep: error: study name: expected a name of letters")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert files_under(tmp_path) == before  # nothing created, inside --results or out


def test_a_space_file_whose_name_is_no_study_name_says_pass_study(tmp_path: Path) -> None:
    space = write_space(tmp_path, name="my space")
    code, _, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 2
    assert err == (
        "sweep: error: study name from the space file 'my space.py': expected a name of "
        "letters, digits, '-', '_' and '.' (not '.' or '..', not starting with '-', "
        "at most 100 characters), got 'my space', which has ' '; "
        "pass --study NAME (e.g. --study my_space) or rename the file\n"
    )
    assert not (tmp_path / "results").exists()


def test_a_worker_refuses_a_study_name_read_back_from_the_storage(tmp_path: Path) -> None:
    import optuna

    from sweep.core.plan import PLAN_ATTR, Plan

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="ok", storage=url)
    plan = Plan(
        space=str(write_space(tmp_path)),
        study="../../escaped",
        storage=url,
        results=str(tmp_path / "r"),
        artifacts=str(tmp_path / "r"),
        mode="min",
        target=1,
    )
    study.set_user_attr(PLAN_ATTR, plan.to_json())
    before = files_under(tmp_path)
    code, _, err = run_cli("worker", "ok", "--storage", url, "--results", "res", cwd=tmp_path)
    assert code == 2
    assert "got '../../escaped', which has '/'" in err and err.count("\n") == 1
    assert files_under(tmp_path) == before


PW = "p w\"q'x@y%z"  # a space, quotes, '@' and '%' (URL-encoded where a URL needs it)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://bob:s3cr@t@db:5432/x", "postgresql://bob:***@db:5432/x"),
        ("postgresql://:hunter22@host/db", "postgresql://:***@host/db"),
        ("postgresql://bob:p w\"q'@host/db", "postgresql://bob:***@host/db"),
        ("postgresql://bob:p%20w%22q%27x%40y%25z@host/db", "postgresql://bob:***@host/db"),
        (
            "postgresql://bob@host/db?sslmode=require&password=p%20w%22q",
            "postgresql://bob@host/db?password=***&sslmode=require",  # sorted by SQLAlchemy
        ),
        ("mysql+pymysql://u:pw1@h/db?passwd=pw2", "mysql+pymysql://u:***@h/db?passwd=***"),
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
        ("sqlite:////tmp/a.db?password=zz", "sqlite:////tmp/a.db?password=***"),
        ("no scheme u:pw@host", "***@host"),
    ],
)
def test_redact_hides_every_password_sqlalchemy_would_read(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_text_hides_the_password_wherever_an_error_echoes_it() -> None:
    url = "postgresql://bob:p%20w%22q%27x%40y%25z@host/db?password=other%20one"
    text = (
        f"connection to {url} failed: password 'p w\"q'x@y%z' rejected, "
        "encoded p%20w%22q%27x%40y%25z, and other one, other+one"
    )
    hidden = redact_text(text, url)
    for secret in ["p w", "p%20w", "other one", "other+one", "other%20one", "x@y"]:
        assert secret not in hidden
    assert "postgresql://bob:***@host/db?password=***" in hidden


def test_a_password_kept_off_the_command_line_is_shown_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import quote

    space = write_space(tmp_path, settings={"trials": 1, "epochs": 2})
    db = tmp_path / "elsewhere" / "study.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}?password={quote(PW, safe='')}"  # SQLite ignores it (a warning)
    monkeypatch.setenv("SWEEP_STORAGE", url)
    code, out, err = run_cli("run", str(space), "--results", "res", cwd=tmp_path)
    assert code == 0, err
    assert db.is_file() and not (tmp_path / "res" / "tiny" / "study.db").exists()
    log = (tmp_path / "res" / "tiny" / "sweep.log").read_text()
    assert f"on sqlite:///{db}?password=***" in log
    # --storage-file comes before SWEEP_STORAGE
    (tmp_path / "url.txt").write_text(f"  {url}  \nignored\n")
    monkeypatch.setenv("SWEEP_STORAGE", f"sqlite:///{tmp_path / 'nothing.db'}")
    code, table, err2 = run_cli("table", "tiny", "--storage-file", "url.txt", cwd=tmp_path)
    assert code == 0 and "complete" in table, err2
    # a driver's error that echoes the URL and the password: hidden too
    server = f"postgresql://:{quote(PW, safe='')}@127.0.0.1:1/db?password=second%20secret"
    (tmp_path / "server.txt").write_text(server)
    code, _, err3 = run_cli("status", "tiny", "--storage-file", "server.txt", cwd=tmp_path)
    assert code == 2 and "postgresql://:***@127.0.0.1:1/db?password=***" in err3
    code, _, err4 = run_cli(
        "status", "tiny", "--storage", url, "--storage-file", "url.txt", cwd=tmp_path
    )
    assert code == 2
    assert err4 == (
        "sweep: error: argument --storage-file: not allowed with argument --storage; "
        "see 'sweep status --help'\n"
    )
    texts = [out, err, table, err2, err3, log]
    texts += [p.read_text() for p in (tmp_path / "res").rglob("*.csv")]
    for secret in [PW, quote(PW, safe=""), "p w", "second secret", "second%20secret"]:
        assert all(secret not in text for text in texts), secret


def test_storage_file_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    code, _, err = run_cli("table", "tiny", "--storage-file", "missing.txt", cwd=tmp_path)
    assert code == 2
    assert err == (
        "sweep: error: --storage-file missing.txt: expected a readable text file with the "
        "storage URL on its first line, got: No such file or directory; fix the path\n"
    )
    (tmp_path / "empty.txt").write_text("\n")
    code, _, err = run_cli("table", "tiny", "--storage-file", "empty.txt", cwd=tmp_path)
    assert code == 2 and "found an empty line; write the URL there" in err
    code, _, err = run_cli("worker", "tiny", cwd=tmp_path)
    assert code == 2 and "--storage-file PATH or the SWEEP_STORAGE environment variable" in err


def modes(folder: Path) -> dict[str, int]:
    """The permission bits of a study's files: the table, a checkpoint, a history, ..."""
    found = {}
    for pattern in ["trials.csv", "trials/0/best.keras", "trials/0/history.csv"]:
        found[pattern] = (folder / pattern).stat().st_mode & 0o777
    for pattern in ["report.html", "study.db", "sweep.log"]:
        if (folder / pattern).exists():
            found[pattern] = (folder / pattern).stat().st_mode & 0o777
    return found


def test_written_files_follow_the_umask_022(finished_sweep: Path) -> None:
    import os

    umask = os.umask(0o022)  # this process's umask, the one the session's sweep ran with
    os.umask(umask)
    found = modes(finished_sweep / "results" / "tiny")
    assert found == dict.fromkeys(found, 0o666 & ~umask)
    assert umask != 0o022 or set(found.values()) == {0o644}


def test_written_files_follow_the_umask_027(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    space = write_space(tmp_path, settings={"trials": 1, "epochs": 2})
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for argv in (["run", str(space)], ["report", "tiny"]):
        done = subprocess.run(
            [sys.executable, "-m", "sweep", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            umask=0o027,
        )
        assert done.returncode == 0, done.stderr
    found = modes(tmp_path / "results" / "tiny")
    assert len(found) == 6 and found == dict.fromkeys(found, 0o640)


BRACKETS_SPACE = """
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    hp.Choice("where", ["[/x]", "[bold]y"])
    # build 1 is the pre-flight check, build 2 trial 0; trial 1 fails, as a missing
    # file would, with brackets in its message
    counter = Path(__file__).with_name("builds.txt")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n > 2:
        raise OSError("cannot open [/data/x.npz] [bold]")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
"""


def test_text_with_square_brackets_is_shown_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_overnight import ANSI, run_here_on_terminal

    monkeypatch.setenv("TERM", "xterm")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    settings = {"trials": 2, "epochs": 2, "sampler": "grid"}
    space = write_space(tmp_path, name="brackets", source=BRACKETS_SPACE, settings=settings)
    code, raw = run_here_on_terminal("run", str(space), cwd=tmp_path)
    assert code == 0, raw
    screen = ANSI.sub("", raw).replace("\r", "")
    assert "\x1b[" in raw  # the live display was drawn
    assert "failed after" in screen and "OSError: cannot open [/data/x.npz] [bold]" in screen
    code, table, err = run_cli("table", "brackets", cwd=tmp_path)
    assert code == 0, err
    assert "cannot open [/data/x.npz] [bold]" in table
    assert "[/x]" in table and "[bold]y" in table  # both grid values, as they are


def test_the_largest_seed_seeds_every_trial(tmp_path: Path) -> None:
    import csv
    import io

    from sweep.core.plan import trial_seed

    assert trial_seed(2**32 - 1, 0) == 2**32 - 1 and trial_seed(2**32 - 1, 1) == 0
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 1})
    code, _, err = run_cli("run", str(space), "--seed", "4294967295", cwd=tmp_path)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results/tiny/trials.csv").read_text())))
    assert [r["state"] for r in rows] == ["complete", "complete"], rows


@pytest.mark.parametrize(
    "flag, shown",
    [
        ("--seed=4294967296", "argument --seed: expected a whole number from 0 to 4294967295"),
        ("--seed=-1", "argument --seed: expected a whole number from 0 to 4294967295"),
        ("--seed=1e3", "argument --seed: expected a whole number from 0 to 4294967295"),
        ("--timeout=nan", "argument --timeout: expected a finite duration like 90s, 30m or 8h"),
        ("--timeout=inf", "argument --timeout: expected a finite duration like 90s, 30m or 8h"),
        ("--timeout=-inf", "argument --timeout: expected a finite duration like 90s, 30m or 8h"),
        ("--timeout=1e999", "argument --timeout: expected a finite duration like 90s, 30m or 8h"),
    ],
)
def test_seeds_and_budgets_out_of_range_are_usage_errors(
    tmp_path: Path, flag: str, shown: str
) -> None:
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), flag, cwd=tmp_path)
    assert code == 2 and err.startswith(f"sweep: error: {shown}") and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e999", "Infinity"])
def test_a_duration_is_finite(text: str) -> None:
    with pytest.raises(ConfigError, match=f"expected a finite duration .* got '{text}'; leave"):
        parse_duration(text)
