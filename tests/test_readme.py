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
