"""The README's set-up commands stay true: CI runs its test command, its examples are real."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, run_cli, write_space

README = (REPO / "README.md").read_text()


def indented_commands(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.startswith("    .venv/") or line.startswith("    python3 -m venv")
    ]


def test_two_setup_commands_near_the_top() -> None:
    top = README.split("## A day with sweep")[0]
    commands = indented_commands(top)
    assert len(commands) == 2
    install, tests = commands
    assert "pip install -e '.[test]'" in install and install.endswith("sweep run")
    assert "pytest" in tests
    # CI runs exactly the README's test command
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()


def test_default_space_exists() -> None:
    assert (REPO / "search_spaces" / "digits_cnn.py").is_file()


def test_readme_error_example_is_the_real_message(tmp_path: Path) -> None:
    shown = re.search(r"^    (sweep: error: search space my_space\.py: .*)$", README, re.M)
    assert shown is not None
    write_space(tmp_path, name="my_space", settings={"patiense": 3})
    code, _, err = run_cli("run", "my_space.py", cwd=tmp_path)
    assert code == 2
    assert err.strip() == shown.group(1)


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading``, as cells (``\\|`` is a cell's ``|``)."""
    lines = README.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows[2:]  # the header and its rule


def _shown(value: object) -> set[str]:
    """How the README writes a setting's default."""
    if isinstance(value, bool):
        return {str(value), "on" if value else "off"}
    if isinstance(value, str):
        return {f"`{value}`"}
    return {str(value)}


def test_the_run_options_table_lists_every_flag_of_sweep_run() -> None:
    """The options are defined once (sweep.core.options): the table has every flag the
    parser derives from them, and no other."""
    import argparse

    from sweep.cli.arguments import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    run = commands.choices["run"]
    flags = {s for a in run._actions for s in a.option_strings} - {"-h", "--help"}
    positionals = {a.dest.upper() for a in run._actions if not a.option_strings}
    rows = _table("### `sweep run` options")
    listed = {name for row in rows for name in re.findall(r"--[a-z][a-z-]*|[A-Z]+", row[0])}
    named = {name for name in listed if name.startswith("--") or name in positionals}
    assert named == flags | positionals


def test_the_run_options_table_has_the_fields_defaults() -> None:
    from dataclasses import fields

    from sweep.core.options import RunArgs, flag
    from sweep.space.files import Settings

    settings = {f.name: f.default for f in fields(Settings)}
    numbers = {
        flag(f.name): f.default
        for f in fields(RunArgs)
        if isinstance(f.default, int) and not isinstance(f.default, bool)
    }
    for first, _, default in _table("### `sweep run` options"):
        if default.startswith("setting"):
            names = re.findall(r"`(\w+)`", default.split("(")[0])
            assert all(name in settings for name in names), default
            for name, shown in re.findall(r"`(\w+)` \(([^)]*)\)", default):
                assert shown in _shown(settings[name]), (name, shown)
        named = re.findall(r"--[a-z-]+", first)
        if len(named) == 1 and named[0] in numbers:
            assert default == str(numbers[named[0]]), (first, default)


def test_the_settings_table_is_the_settings_fields() -> None:
    """Every setting, in the order of the fields, with the field's default."""
    from dataclasses import fields

    from sweep.space.files import Settings

    listed, defaults = [], {}
    for names, _, shown in _table("### Settings"):
        group = re.findall(r"`(\w+)`", names)
        values = shown.split(", ") if len(group) > 1 else [shown]
        assert len(values) == len(group), names
        listed += group
        defaults.update(zip(group, values, strict=True))

    assert listed == [f.name for f in fields(Settings)]
    for f in fields(Settings):
        assert defaults[f.name] in _shown(f.default), (f.name, defaults[f.name])
