"""A malformed search space, or a bad command line, is rejected before any trial runs.

Every case: exit status 2, one line on stderr starting ``sweep: error:`` that names the
file (for file problems), the problem and the fix; no traceback; no trial recorded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import TINY_SPACE, run_cli, sweep_subprocess, write_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tiny_with(old: str, new: str) -> str:
    """TINY_SPACE with one exact piece of text replaced (which must be there)."""
    assert old in TINY_SPACE, old
    return TINY_SPACE.replace(old, new)


def assert_no_trial_recorded(folder: Path, study: str = "tiny") -> None:
    db = folder / "results" / study / "study.db"
    if not db.exists():
        return
    try:
        loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{db}")
    except KeyError:
        return
    assert loaded.trials == []


def assert_rejected(
    result: tuple[int, str, str],
    folder: Path,
    *,
    path: Path | None = None,
    words: tuple[str, ...] = (),
    study: str = "tiny",
) -> str:
    """Check the common contract; return the message (without ``sweep: error: `` and newline)."""
    code, _out, err = result
    assert "Traceback" not in err
    assert code == 2, err
    assert err.startswith("sweep: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    message = err.removeprefix("sweep: error: ").removesuffix("\n")
    if path is not None:
        assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert_no_trial_recorded(folder, study)
    return message


def run_space(folder: Path, path: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("run", str(path), *extra, cwd=folder)


# ---------------------------------------------------------------------------------------------
# The file itself


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tiny.py"
    path.write_text(
        "import keras\n\n\ndef build_model(hp)\n    return None\n\n\ndef load_data():\n"
        "    return None\n",
        encoding="utf-8",
    )
    message = assert_rejected(
        run_space(tmp_path, path), tmp_path, path=path, words=("syntax error", "line 4")
    )
    assert "fix" in message


def test_missing_build_model(tmp_path: Path) -> None:
    path = write_space(tmp_path, source=tiny_with("def build_model(hp):", "def build(hp):"))
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("build_model(hp)", "HyperModel", "found neither", "define one"),
    )


def test_missing_load_data(tmp_path: Path) -> None:
    path = write_space(tmp_path, source=tiny_with("def load_data():", "def get_data():"))
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("load_data()", "found none", "define it"),
    )


def test_build_model_not_callable(tmp_path: Path) -> None:
    path = write_space(tmp_path, extra="build_model = 3\n")
    assert_rejected(run_space(tmp_path, path), tmp_path, path=path, words=("build_model(hp)",))


@pytest.mark.parametrize(
    ("returned", "got"),
    [("None", "got NoneType"), ("keras.layers.Dense(3)", "got Dense")],
    ids=["none", "a-layer"],
)
def test_build_model_returning_something_else(tmp_path: Path, returned: str, got: str) -> None:
    path = write_space(tmp_path, source=tiny_with("    return model\n", f"    return {returned}\n"))
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("build_model(hp)", "keras.Model", got, "return the model"),
    )


def test_build_model_returning_an_uncompiled_model(tmp_path: Path) -> None:
    # the compile arguments (and so hp.Float("lr")) are still evaluated, into a dict
    path = write_space(tmp_path, source=tiny_with("    model.compile(", "    _unused = dict("))
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("not compiled", "model.compile("),
    )


def test_build_model_raising(tmp_path: Path) -> None:
    path = write_space(
        tmp_path, source=tiny_with("    model = keras.Sequential(", "    model = keras.Sequentail(")
    )
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("build_model(hp) raised AttributeError", "Sequentail", "fix the file"),
    )


def test_bad_range_min_above_max(tmp_path: Path) -> None:
    path = write_space(
        tmp_path, source=tiny_with('hp.Int("units", 4, 16, step=4)', 'hp.Int("units", 10, 1)')
    )
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("'units'", "min_value 10", "max_value 1", "fix the file"),
    )


def test_hyperparameter_with_no_optuna_distribution(tmp_path: Path) -> None:
    path = write_space(
        tmp_path,
        source=tiny_with(
            'hp.Float("lr", 1e-3, 3e-2, sampling="log")',
            'hp.Float("lr", 1e-3, 3e-2, sampling="reverse_log")',
        ),
    )
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("'lr'", "reverse_log", "sampling='log'"),
    )


def test_importing_the_file_raises(tmp_path: Path) -> None:
    path = write_space(tmp_path, extra='raise RuntimeError("boom")\n')
    line = path.read_text().splitlines().index('raise RuntimeError("boom")') + 1
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("importing it raised RuntimeError: boom", f"(line {line})", "fix the file"),
    )


# ---------------------------------------------------------------------------------------------
# SETTINGS


def test_unknown_setting_suggests_the_close_one(tmp_path: Path) -> None:
    path = write_space(tmp_path, settings={"patiense": 3})
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("unknown setting 'patiense'", "did you mean 'patience'?"),
    )


def test_unknown_setting_far_from_any_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_space(tmp_path, settings={"zzz": 1})
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("unknown setting 'zzz'", "known:", "patience", "validation_split"),
    )


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"epochs": 0}, ("'epochs'", "whole number >= 1", "got 0", "--epochs")),
        ({"epochs": 2.5}, ("'epochs'", "whole number >= 1", "got 2.5", "--epochs")),
        ({"mode": "up"}, ("'mode'", "one of auto, min, max", "got 'up'", "--mode")),
        (
            {"validation_split": 1.5},
            ("'validation_split'", "[0, 1)", "got 1.5", "--validation-split"),
        ),
        ({"patience": -1}, ("'patience'", "whole number >= 0", "got -1", "--patience")),
        ({"monitor": ""}, ("'monitor'", "a metric name", "--monitor")),
        ({"sampler": "nope"}, ("'sampler'", "tpe, random, grid", "got 'nope'", "--sampler")),
    ],
    ids=["epochs-0", "epochs-float", "mode", "validation-split", "patience", "monitor", "sampler"],
)
def test_bad_setting_value(tmp_path: Path, settings: dict[str, Any], words: tuple[str]) -> None:
    path = write_space(tmp_path, settings=settings)
    message = assert_rejected(run_space(tmp_path, path), tmp_path, path=path, words=words)
    assert message.startswith(f"search space {path}: setting ")
    assert f"fix it in {path}" in message


@pytest.mark.parametrize("value", ["[('epochs', 3)]", "None", "'epochs=3'"])
def test_settings_not_a_dict(tmp_path: Path, value: str) -> None:
    path = write_space(tmp_path, source=tiny_with("SETTINGS = {settings!r}", f"SETTINGS = {value}"))
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("SETTINGS to be a dict", "SETTINGS = {"),
    )


def test_mode_auto_that_keras_cannot_infer(tmp_path: Path) -> None:
    """Keras gives a plain-function metric no direction, so ``mode='auto'`` can't resolve."""
    source = tiny_with('metrics=["accuracy"]', "metrics=[my_metric]") + (
        "\n\ndef my_metric(y_true, y_pred):\n    return keras.ops.mean(y_pred)\n"
    )
    path = write_space(tmp_path, source=source, settings={"monitor": "val_my_metric"})
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        words=("mode 'auto'", "'val_my_metric'", "--mode min", "--mode max"),
    )
    # the advice works: with a mode the space is accepted (and trains)
    code, _out, err = run_space(tmp_path, path, "--mode", "max", "--epochs", "1", "--trials", "1")
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    "settings",
    [
        {"monitor": "val_acuracy", "mode": "max"},
        {"monitor": "val_accuracy", "validation_split": 0.0},
    ],
    ids=["typo-explicit-mode", "val-monitor-without-validation-data"],
)
def test_monitor_not_logged_is_rejected_before_any_trial(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    path = write_space(tmp_path, settings=settings)
    assert_rejected(run_space(tmp_path, path), tmp_path, words=(repr(settings["monitor"]),))


# ---------------------------------------------------------------------------------------------
# load_data()


@pytest.mark.parametrize(
    ("returned", "words"),
    [
        ("x", ("load_data() returned ndarray", "expected (x, y)")),
        ("None", ("load_data() returned NoneType", "expected (x, y)")),
        ("(x, y, y, y)", ("load_data() returned tuple", "expected (x, y)")),  # (x, y, w) is valid
        ("x, y[:10]", ("training arrays", "equal length", "x with 240", "y with 10")),
        ("x[:0], y[:0]", ("training arrays", "non-empty")),
        ("(x, y), (x[:5], y[:4])", ("validation arrays", "x with 5", "y with 4")),
    ],
    ids=["single-array", "none", "triple", "lengths", "empty", "validation-lengths"],
)
def test_load_data_wrong_structure(tmp_path: Path, returned: str, words: tuple[str]) -> None:
    path = write_space(
        tmp_path, source=tiny_with('return x, y.astype("int64")', f"return {returned}")
    )
    assert_rejected(run_space(tmp_path, path), tmp_path, path=path, words=words)


def test_load_data_raising(tmp_path: Path) -> None:
    path = write_space(
        tmp_path,
        source=tiny_with(
            "    rng = np.random.default_rng(0)\n",
            '    raise FileNotFoundError("digits.npz is not there")\n',
        ),
    )
    assert_rejected(
        run_space(tmp_path, path),
        tmp_path,
        path=path,
        words=("load_data() raised FileNotFoundError: digits.npz is not there", "fix the file"),
    )


# ---------------------------------------------------------------------------------------------
# Finding the space


def test_unknown_space_name_lists_the_spaces_that_exist(tmp_path: Path) -> None:
    spaces = tmp_path / "search_spaces"
    spaces.mkdir()
    write_space(spaces, "beta")
    write_space(spaces, "alpha")
    assert_rejected(
        run_cli("run", "gamma", cwd=tmp_path),
        tmp_path,
        words=("'gamma'", "search_spaces/gamma.py", "spaces in search_spaces/: alpha, beta"),
        study="gamma",
    )


def test_unknown_space_name_with_no_spaces_folder(tmp_path: Path) -> None:
    assert_rejected(
        run_cli("run", "gamma", cwd=tmp_path),
        tmp_path,
        words=("'gamma'", "spaces in search_spaces/: none"),
        study="gamma",
    )


@pytest.mark.parametrize("spec", ["missing/space.py", "space.py"])
def test_nonexistent_space_path(tmp_path: Path, spec: str) -> None:
    assert_rejected(
        run_cli("run", spec, cwd=tmp_path),
        tmp_path,
        words=(f"search space {spec}", "no such file", "search_spaces/"),
        study="space",
    )


def test_a_directory_is_not_a_space(tmp_path: Path) -> None:
    (tmp_path / "spaces.d").mkdir()
    assert_rejected(
        run_cli("run", "spaces.d", cwd=tmp_path),
        tmp_path,
        words=("spaces.d", "expected a Python file"),
        study="spaces",
    )


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("run", "--epochs", "x"), ("--epochs", "whole number", "'x'", "sweep run --help")),
        (("run", "--epochs", "0"), ("--epochs", "whole number >= 1", "got 0")),
        (("run", "--timeout", "soon"), ("--timeout", "90s", "'soon'", "sweep run --help")),
        (("run", "--timeout", "0s"), ("--timeout", "positive", "'0s'")),
        (("run", "--patience", "-1"), ("--patience", "whole number >= 0", "-1")),
        (("run", "--min-delta", "tiny"), ("--min-delta", "a number", "'tiny'")),
        (("run", "--jobz", "2"), ("unrecognized arguments: --jobz", "--help")),
        (("table",), ("required: study", "sweep table --help")),
        (("status",), ("required: study", "sweep status --help")),
        (("frobnicate",), ("invalid choice", "'frobnicate'")),
        ((), ("required",)),
    ],
    ids=[
        "epochs-x",
        "epochs-0",
        "timeout-soon",
        "timeout-0",
        "patience-neg",
        "min-delta",
        "unknown-flag",
        "table-no-study",
        "status-no-study",
        "unknown-command",
        "no-command",
    ],
)
def test_usage_errors(tmp_path: Path, argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    assert_rejected(run_cli(*argv, cwd=tmp_path), tmp_path, words=words, study="digits_cnn")
    assert not (tmp_path / "results").exists()


def test_sampler_flag_is_validated_as_a_setting(tmp_path: Path) -> None:
    path = write_space(tmp_path)
    message = assert_rejected(
        run_space(tmp_path, path, "--sampler", "nope"),
        tmp_path,
        words=("--sampler", "one of tpe, random, grid, cmaes, gp", "'nope'"),
    )
    # the value came from the command line, so the message doesn't blame the file
    assert message == "--sampler: expected one of tpe, random, grid, cmaes, gp, got 'nope'"


def test_command_line_overrides_are_checked_against_the_settings_rules(tmp_path: Path) -> None:
    path = write_space(tmp_path)
    assert_rejected(
        run_space(tmp_path, path, "--validation-split", "1"),
        tmp_path,
        words=("--validation-split", "[0, 1)", "got 1.0"),
    )


# ---------------------------------------------------------------------------------------------
# Pinned messages: a change to what the user reads must be deliberate


def test_snapshot_missing_build_model(tmp_path: Path) -> None:
    path = write_space(tmp_path, source=tiny_with("def build_model(hp):", "def build(hp):"))
    _code, _out, err = run_space(tmp_path, path)
    assert err == (
        f"sweep: error: search space {path}: expected a function build_model(hp) returning "
        "a compiled keras.Model, or a KerasTuner HyperModel (hypermodel = MyHyperModel()), "
        "found neither; define one in the file\n"
    )


def test_snapshot_unknown_setting(tmp_path: Path) -> None:
    path = write_space(tmp_path, settings={"patiense": 3})
    _code, _out, err = run_space(tmp_path, path)
    assert err == (
        f"sweep: error: search space {path}: unknown setting 'patiense'; did you mean 'patience'?\n"
    )


def test_snapshot_bad_setting_value(tmp_path: Path) -> None:
    path = write_space(tmp_path, settings={"epochs": 0})
    _code, _out, err = run_space(tmp_path, path)
    assert err == (
        f"sweep: error: search space {path}: setting 'epochs' expected a whole number >= 1, "
        f"got 0; fix it in {path} or pass --epochs\n"
    )


def test_snapshot_unknown_space_name(tmp_path: Path) -> None:
    spaces = tmp_path / "search_spaces"
    spaces.mkdir()
    write_space(spaces, "digits_cnn")
    _code, _out, err = run_cli("run", "digits", cwd=tmp_path)
    assert err == (
        "sweep: error: search space 'digits': expected search_spaces/digits.py or a path to a "
        ".py file, found neither; spaces in search_spaces/: digits_cnn\n"
    )


def test_snapshot_usage_error(tmp_path: Path) -> None:
    _code, _out, err = run_cli("run", "--patience", "-1", cwd=tmp_path)
    assert err == (
        "sweep: error: argument --patience: expected a whole number >= 0, got -1; "
        "see 'sweep run --help'\n"
    )


# ---------------------------------------------------------------------------------------------
# At the process level


NOISE = re.compile(
    r"cuda|^WARNING: All log messages|^[IWE]\d{4} |absl::InitializeLog|rebuild TensorFlow",
    re.IGNORECASE,
)


def test_rejected_in_a_real_process(tmp_path: Path) -> None:
    """The real entry point: exit status 2 and the one line, with TensorFlow imported."""
    path = write_space(tmp_path, source=tiny_with("    return model\n", "    return None\n"))
    proc = sweep_subprocess("run", str(path), cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line and not NOISE.search(line)]
    assert lines == [
        f"sweep: error: search space {path}: build_model(hp) must return a compiled "
        "keras.Model, got NoneType; return the model"
    ]
    assert_no_trial_recorded(tmp_path)
