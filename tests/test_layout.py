"""The layout: pyproject's import-linter contracts (run by .ci/run as lint-imports) hold
the layers and the TensorFlow boundary; the boundary's contract covers every subpackage
but sweep.train, and their modules import TensorFlow/Keras/KerasTuner/sweep.train only
inside functions; no import cycle."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import REPO

HEAVY = ("tensorflow", "keras", "keras_tuner", "sweep.train")


def _contract(kind: str) -> dict[str, object]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == kind]
    return dict(contract)


def _outside_train() -> list[Path]:
    """Every module of sweep but sweep.train's (and the package's own, lazy, __init__)."""
    return sorted(
        p
        for p in (REPO / "sweep").rglob("*.py")
        if p.relative_to(REPO / "sweep").parts[0] != "train" and p != REPO / "sweep/__init__.py"
    )


def _module_level(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run on import: not in functions, not under ``if TYPE_CHECKING:``."""
    out = []
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            out += _module_level(node.orelse)
            continue
        out.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            out += _module_level(getattr(node, field, []))
    return out


def _heavy(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HEAVY)


def test_the_contracts_cover_every_subpackage() -> None:
    packages = {p.name for p in (REPO / "sweep").iterdir() if (p / "__init__.py").is_file()}
    layers = _contract("layers")["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}  # type: ignore[attr-defined]
    assert named == packages
    sources = set(_contract("forbidden")["source_modules"])  # type: ignore[arg-type]
    assert sources == {f"sweep.{p}" for p in packages - {"train"}} | {"sweep.__main__"}


def test_no_module_outside_train_imports_tensorflow_at_module_level() -> None:
    """What the contract's ignore_imports relies on: those imports are in functions."""
    found = []
    for path in _outside_train():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _module_level(tree.body):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if _heavy(n)]
    assert found == []


def test_no_import_cycle_among_sweeps_modules() -> None:
    """Imports point one way: no module reaches back to one that imports it (grimp's graph,
    as lint-imports builds it; imports made for type checking only are left out)."""
    import grimp

    graph = grimp.build_graph(
        "sweep", include_external_packages=False, exclude_type_checking_imports=True
    )
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.add(" -> ".join((module, *back)))
    assert not cycles, "\n".join(sorted(cycles))


PRIVATE = ("_storage", "_trial_id", "_study_id", "_cached_storage", "_heartbeat")


def test_optunas_private_names_only_in_store() -> None:
    """Optuna's private API (a study's storage, a trial's id, its private storage modules)
    is used in sweep.store alone: anywhere else a change in Optuna would break us unseen."""
    found = []
    for path in sorted((REPO / "sweep").rglob("*.py")):
        if path.relative_to(REPO / "sweep").parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = ""
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                name = node.attr
            elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith(
                "optuna.storages._"
            ):
                name = ast.unparse(node)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "optuna.storages._"
            ):
                name = str(node.module)
            elif isinstance(node, ast.Import):
                name = next(
                    (a.name for a in node.names if a.name.startswith("optuna.storages._")), ""
                )
            if name:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert found == []


# Functions past ~60 lines, each named with why it is still one (a new one fails the test;
# one split below the limit must leave this list too). Issue 24's item 5 splits the ones
# on the main path (run_trial, _prepared, run_one, export) into named steps.
LONG_FUNCTIONS = {
    "sweep/space/datasets.py:load_imdb": "IMDB read from the archive Keras downloads, as "
    "Keras' own load_data does it, step by step",
    "sweep/views/stopping.py:replay_many": "Keras' rule replayed for many settings in one "
    "pass over each curve (the hot loop of sweep compare at 10,000 trials)",
}


def test_every_long_function_is_named_with_a_reason() -> None:
    found = set()
    for path in sorted((REPO / "sweep").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > 60:
                    found.add(f"{path.relative_to(REPO)}:{node.name}")
    assert found == set(LONG_FUNCTIONS)


def _used_from_outside() -> dict[str, dict[str, set[str]]]:
    """For each subpackage, the names other parts of sweep import from it, by module."""
    used: dict[str, dict[str, set[str]]] = {}
    for path in (REPO / "sweep").rglob("*.py"):
        parts = path.relative_to(REPO / "sweep").parts
        here = parts[0] if len(parts) > 1 else None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            target = node.module.split(".")
            if node.module == "sweep.core.lazy":  # how every __init__ lists its names
                continue
            if target[0] == "sweep" and len(target) >= 3 and target[1] != here:
                names = used.setdefault(target[1], {}).setdefault(target[2], set())
                names.update(alias.name for alias in node.names)
    return used


def test_each_subpackage_lists_the_names_the_others_use() -> None:
    # A subpackage's __init__ is its interface: exactly the names the rest of sweep imports
    # from it (a new one is added there on purpose; one no longer used leaves), each
    # importable through the package (lazily: importing it loads none of its modules).
    import importlib

    for package, by_module in _used_from_outside().items():
        module = importlib.import_module(f"sweep.{package}")
        listed = {name: set(names) for name, names in module._PUBLIC.items()}
        expected = {name: sorted(names) for name, names in sorted(by_module.items())}
        where = f"sweep/{package}/__init__.py's _PUBLIC (python tests/test_layout.py rewrites it)"
        assert listed == by_module, f"{where}: {expected}"
        for name in module.__all__:
            assert getattr(module, name) is not None, f"sweep.{package}.{name}"


def write_public_lists() -> None:
    """Rewrite each subpackage's ``_PUBLIC`` from the imports (``python tests/test_layout.py``,
    then ``ruff format sweep``)."""
    import re

    for package, by_module in sorted(_used_from_outside().items()):
        init = REPO / "sweep" / package / "__init__.py"
        entries = "".join(
            f"    {module!r}: {sorted(names)!r},\n".replace("'", '"')
            for module, names in sorted(by_module.items())
        )
        text = init.read_text(encoding="utf-8")
        found = re.search(r"_PUBLIC = \{\n.*?\n\}\n", text, flags=re.S)
        assert found is not None, f"{init} has no _PUBLIC"
        text = text[: found.start()] + "_PUBLIC = {\n" + entries + "}\n" + text[found.end() :]
        init.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_public_lists()
