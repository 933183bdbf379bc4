"""`--storage journal:PATH` after a torn write (issue 23, items 5, 6 and 16).

A process killed while it appends to the journal, or a disk that fills up during the
append, leaves a partial last line. Optuna skips it when reading, but its next append is
glued onto it and from then on nothing reads the file (``JSONDecodeError``). sweep sets a
torn final record aside (its bytes kept beside the journal) and goes on; a journal that is
garbage is one line, exit status 2, nothing changed. A reader never creates a journal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space

from sweep.store.storage import load_existing_study, open_storage

SETTINGS = {"trials": 2, "epochs": 3}


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real finished journal study (2 trials of the tiny space)."""
    folder = tmp_path_factory.mktemp("journal")
    space = write_space(folder, settings=SETTINGS)
    url = f"journal:{folder / 'study.log'}"
    code, _, err = run_cli("run", str(space), "--storage", url, "--seed", "1", cwd=folder)
    assert code == 0, err
    return (folder / "study.log").read_bytes()


def _last_record_start(data: bytes) -> int:
    return data.rstrip(b"\n").rfind(b"\n") + 1


def _states(path: Path) -> list[str]:
    study = load_existing_study("tiny", results_dir=path.parent, storage=f"journal:{path}")
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_a_torn_last_record_is_set_aside_at_every_offset(tmp_path: Path, journal: bytes) -> None:
    start = _last_record_start(journal)
    last = json.loads(journal[start:])
    assert last["op_code"] == 6 and last["state"] == 1  # trial 1's COMPLETE: the last write
    for offset in range(start + 1, len(journal)):  # every cut inside the last record
        folder = tmp_path / str(offset)
        folder.mkdir()
        path = folder / "study.log"
        path.write_bytes(journal[:offset])
        code, out, err = run_cli("table", "tiny", "--storage", f"journal:{path}", cwd=folder)
        assert code == 0, (offset, err)
        assert "Traceback" not in err
        notes = [line for line in err.splitlines() if str(path) in line]
        assert len(notes) == 1, (offset, err)
        asides = list(folder.glob("study.log.torn-*"))
        if offset == len(journal) - 1:  # the whole record, without its line end: completed
            assert "no line end" in notes[0]
            assert path.read_bytes() == journal and not asides
            assert _states(path) == ["COMPLETE", "COMPLETE"]
        else:
            assert "set aside" in notes[0] and str(asides[0]) in notes[0], offset
            assert asides[0].read_bytes() == journal[start:offset]
            assert path.read_bytes() == journal[:start]  # the records before it, intact
            assert _states(path) == ["COMPLETE", "RUNNING"]
        assert out.count("complete") == 2 - ("running" in out)
        assert not (folder / "study.log.lock").exists()


def test_the_rerun_resumes_the_study_after_a_torn_record(tmp_path: Path, journal: bytes) -> None:
    write_space(tmp_path, settings={**SETTINGS, "trials": 3})
    path = tmp_path / "study.log"
    start = _last_record_start(journal)
    path.write_bytes(journal[: start + 40])
    url = f"journal:{path}"
    code, out, err = run_cli("run", "tiny.py", "--storage", url, "--seed", "1", cwd=tmp_path)
    assert code == 0, err
    assert "set aside" in err
    assert "trial 1 was left running by a process that is gone; resuming it" in out
    assert _states(path) == ["COMPLETE", "COMPLETE", "COMPLETE"]
    (aside,) = tmp_path.glob("study.log.torn-*")
    assert aside.read_bytes() == journal[start : start + 40]
    code, out, err = run_cli("table", "tiny", "--storage", url, cwd=tmp_path)
    assert code == 0 and err == "" and out.count("complete") == 3


def test_a_writer_never_appends_onto_a_torn_record(tmp_path: Path, journal: bytes) -> None:
    """Another process killed mid-append while this one has the journal open: this one's
    next write sets the torn record aside first (under the journal's lock)."""
    path = tmp_path / "study.log"
    path.write_bytes(journal)
    study = optuna.load_study(study_name="tiny", storage=open_storage(f"journal:{path}"))
    start = len(journal)
    with path.open("ab") as fh:
        fh.write(b'{"op_code":8,"worker_id":"dead","trial_id":1,"user_attr":{"note":"ha')
    study.set_user_attr("after", 1)
    assert path.read_bytes().startswith(journal)
    assert json.loads(path.read_bytes()[start:])["user_attr"] == {"after": 1}
    (aside,) = tmp_path.glob("study.log.torn-*")
    assert aside.read_bytes().startswith(b'{"op_code":8,"worker_id":"dead"')
    assert _states(path) == ["COMPLETE", "COMPLETE"]


def test_a_torn_record_under_a_held_lock_is_left_to_the_writer(
    tmp_path: Path, journal: bytes
) -> None:
    """A reader that finds the journal's lock taken may be looking at a record being
    written right now: it reads around it and changes nothing."""
    path = tmp_path / "study.log"
    torn = journal[: _last_record_start(journal) + 30]
    path.write_bytes(torn)
    (tmp_path / "study.log.lock").touch()
    code, out, err = run_cli("table", "tiny", "--storage", f"journal:{path}", cwd=tmp_path)
    assert code == 0 and err == "" and "running" in out
    assert path.read_bytes() == torn and not list(tmp_path.glob("study.log.torn-*"))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"hello, this is not a journal\n", id="text"),
        pytest.param(b"SQLite format 3\x00\x10\x00\x01\x01\x00@  \x00\x00\x00\x02", id="binary"),
        pytest.param(None, id="corrupt-in-the-middle"),
    ],
)
def test_a_garbage_journal_is_one_line_and_nothing_changes(
    tmp_path: Path, journal: bytes, content: bytes | None
) -> None:
    if content is None:
        lines = journal.splitlines(keepends=True)
        content = b"".join([*lines[:5], lines[5][:30] + b"\n", *lines[6:]])
    write_space(tmp_path, settings=SETTINGS)
    path = tmp_path / "study.log"
    path.write_bytes(content)
    url = f"journal:{path}"
    for argv in (("table", "tiny"), ("run", "tiny.py")):
        code, _, err = run_cli(*argv, "--storage", url, cwd=tmp_path)
        assert code == 2, err
        (line,) = err.splitlines()
        assert line.startswith(f"sweep: error: --storage {url}: expected an Optuna journal")
        assert "nothing was changed" in line
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.glob("study.log*")) == ["study.log"]
    if content.startswith(b"{"):
        assert "line 6 of" in line


@pytest.mark.parametrize(
    "argv",
    [
        ("table", "tiny"),
        ("status", "tiny"),
        ("compare", "tiny", "--patience", "1,2"),
        ("report", "tiny"),
        ("export", "tiny", "--out", "winner.keras"),
    ],
    ids=lambda argv: argv[0],
)
def test_a_reader_never_creates_a_journal(tmp_path: Path, argv: tuple[str, ...]) -> None:
    path = tmp_path / "typo.log"
    code, _, err = run_cli(*argv, "--storage", f"journal:{path}", cwd=tmp_path)
    assert code == 2, err
    assert err.startswith(f"sweep: error: no such journal: {path}; expected")
    assert "create it with sweep run" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_sweep_load_never_creates_a_journal(tmp_path: Path) -> None:
    import sweep

    path = tmp_path / "typo.log"
    with pytest.raises(sweep.ConfigError, match="no such journal"):
        sweep.load("tiny", results=tmp_path, storage=f"journal:{path}")
    assert list(tmp_path.iterdir()) == []


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:  # needs root (CI runs as root); no other way to fill a disk
        pytest.skip(f"cannot mount a small tmpfs to fill: {done.stderr.strip()}")


def test_a_full_disk_under_the_journal_names_its_folder(tmp_path: Path) -> None:
    """A real full disk: the journal on a 16 KB tmpfs, the results elsewhere. The line
    names the journal's folder, the failed write is undone (no torn record), and once
    there is space the same command finishes the study."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "16k")
    try:
        write_space(tmp_path, settings={**SETTINGS, "trials": 6})
        url = f"journal:{disk / 'study.log'}"
        argv = ("run", "tiny.py", "--storage", url, "--seed", "1")
        code, _, err = run_cli(*argv, cwd=tmp_path)
        assert code == 1, err
        (line,) = err.splitlines()
        assert line.startswith(f"sweep: error: disk full: out of space writing to {disk} ("), line
        data = (disk / "study.log").read_bytes()
        assert data.endswith(b"\n") and all(json.loads(x) for x in data.splitlines())
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)
        code, _, err = run_cli(*argv, cwd=tmp_path)
        assert code == 0, err
        assert "set aside" not in err
        assert _states(disk / "study.log") == ["COMPLETE"] * 6
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)
        shutil.rmtree(disk, ignore_errors=True)
